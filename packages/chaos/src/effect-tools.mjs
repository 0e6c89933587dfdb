// Tools of the chaos workload (issue 11), loaded by the worker through GAMBIT_TOOLS_MODULE. Each
// writes its effect to an append-only log file before it returns, so the history checker can
// count what reached "the outside world" independently of Redis (which a campaign kills):
// one JSON line per applied effect in `${CHAOS_EFFECT_DIR}/effects-<pid>.jsonl`, written with
// O_APPEND and fsync'd before the tool goes on.
// - `ship_parcel` (irreversible, takes NO idempotency key): a retry after a try that may have
//   started must stop in `needs_attention` (D2), never ship twice.
// - `reserve_seat` (idempotent): safe to repeat; the checker counts distinct keys.
// `args.holdMs` (real ms, optional) is how long the outside service takes after the effect.
//
// Deliberately broken code, to show that the campaign fails when an invariant is broken
// (issue 11): GAMBIT_CHAOS_BREAK=<name> (`pnpm chaos --break <name>`) makes these tools, and
// nothing else, misbehave as `BREAKS` says. Unset, they behave; an unknown name is an error.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError, RetryableError, ValidationError } from '@gambit/shared';
import { runKeys } from '@gambit/shared/redis';

/** The supported breaks: name -> what the tools do wrong, and the invariant that must catch it. */
export const BREAKS = {
  skip_idempotency_check: {
    invariant: 'no_effect_twice',
    what: 'ship_parcel declares that it applies its effect at most once per idempotency key but never checks the key, and the answer of its first try is lost after the parcel shipped (a retryable timeout), so the worker retries it under the same key and it ships again',
  },
  unbooked_spend: {
    invariant: 'ledger_run',
    what: "reserve_seat adds 1 nano-USD to its run's cost counter outside any attempt (a spend the attempts' ledger never booked)",
  },
};

/** The break named by GAMBIT_CHAOS_BREAK ('' for none), or a clear error for an unknown name. */
export function chaosBreak(env = process.env, field = 'env.GAMBIT_CHAOS_BREAK') {
  const name = env.GAMBIT_CHAOS_BREAK ?? '';
  if (name !== '' && !Object.hasOwn(BREAKS, name))
    throw new ValidationError([{ path: field, message: `unknown break "${name}" (one of ${Object.keys(BREAKS).join(', ')})` }]);
  return name;
}

let fd;
function effectLog() {
  if (fd !== undefined) return fd;
  const dir = process.env.CHAOS_EFFECT_DIR;
  if (dir === undefined || dir === '') throw new ValidationError([{ path: 'env.CHAOS_EFFECT_DIR', message: 'required by the chaos effect tools' }]);
  fd = openSync(join(dir, `effects-${process.pid}.jsonl`), 'a');
  process.once('exit', () => closeSync(fd));
  return fd;
}

function record(tool, ctx, extra) {
  const line = `${JSON.stringify({ tool, tenant: ctx.tenant, runId: ctx.runId, nodeId: ctx.nodeId, attemptId: ctx.attemptId, key: ctx.idempotencyKey, tryNo: ctx.tryNo, kind: ctx.kind, pid: process.pid, atMs: Date.now(), ...extra })}\n`;
  const f = effectLog();
  writeSync(f, line);
  fsyncSync(f);
}

function hold(ms, signal) {
  if (!(ms > 0)) return Promise.resolve();
  if (signal.aborted) return Promise.reject(new AbortedError('aborted'));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function register(registry) {
  const brk = chaosBreak();
  registry.register({
    name: 'ship_parcel',
    effects: 'irreversible',
    ...(brk === 'skip_idempotency_check' ? { honoursIdempotencyKey: true } : {}),
    async run(args, ctx) {
      const parcel = String(args.parcel ?? '');
      record('ship_parcel', ctx, { parcel });
      await hold(Number(args.holdMs ?? 0), ctx.signal);
      if (brk === 'skip_idempotency_check' && ctx.tryNo === 1) throw new RetryableError('PROVIDER_TIMEOUT', `chaos break ${brk}: the carrier's answer was lost after parcel ${parcel} shipped`);
      return { output: `shipped ${parcel}` };
    },
  });
  registry.register({
    name: 'reserve_seat',
    effects: 'idempotent',
    async run(args, ctx) {
      const seat = String(args.seat ?? '');
      record('reserve_seat', ctx, { seat });
      await hold(Number(args.holdMs ?? 0), ctx.signal);
      if (brk === 'unbooked_spend') await ctx.redis.hincrby(runKeys(ctx.ks, ctx.tenant, ctx.runId).run, 'costNanoUsd', 1);
      return { output: `seat ${seat}` };
    },
  });
}
