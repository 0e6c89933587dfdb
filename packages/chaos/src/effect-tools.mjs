// Tools of the chaos workload (issue 11), loaded by the worker through GAMBIT_TOOLS_MODULE. Each
// writes its effect to an append-only log file before it returns, so the history checker can
// count what reached "the outside world" independently of Redis (which a campaign kills):
// one JSON line per applied effect in `${CHAOS_EFFECT_DIR}/effects-<pid>.jsonl`, written with
// O_APPEND and fsync'd before the tool goes on.
// - `ship_parcel` (irreversible, takes NO idempotency key): a retry after a try that may have
//   started must stop in `needs_attention` (D2), never ship twice.
// - `reserve_seat` (idempotent): safe to repeat; the checker counts distinct keys.
// `args.holdMs` (real ms, optional) is how long the outside service takes after the effect.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError, ValidationError } from '@gambit/shared';

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
  registry.register({
    name: 'ship_parcel',
    effects: 'irreversible',
    async run(args, ctx) {
      const parcel = String(args.parcel ?? '');
      record('ship_parcel', ctx, { parcel });
      await hold(Number(args.holdMs ?? 0), ctx.signal);
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
      return { output: `seat ${seat}` };
    },
  });
}
