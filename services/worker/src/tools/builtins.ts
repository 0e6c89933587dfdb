/**
 * Built-in tools, one per effects class (M6), so workflows, tests and demos can exercise
 * admissibility and the commit barrier with real side effects in Redis:
 * - `echo` (none): returns `args.text`, or the arguments as JSON.
 * - `sleep` (none): waits `args.ms` real milliseconds (abortable).
 * - `kv_lookup` (idempotent): reads field `args.key` of the tenant's table `args.table`, after a
 *   simulated latency; a missing field yields the empty string.
 * - `send_message` (staged): stages `{ type: 'message', to, body }`; the scheduler releases it.
 * - `charge_card` (irreversible, honours the idempotency key): appends a charge to the tenant's
 *   charges list at most once per idempotency key (issue 11 D2), so tests can prove an
 *   irreversible tool never ran speculatively and never twice. `args.confirmMs` (optional, real
 *   ms) is how long the card network takes to confirm after the charge is applied.
 * - `http_get` (none, discloses): GETs `args.url` (http or https) and returns `{status, body}`.
 * - `http_post` (irreversible, discloses, honours the idempotency key by passing it on): POSTs
 *   `args.body` (a string) to `args.url` with an `Idempotency-Key` header; the service it calls
 *   must honour that header for a retry to be safe.
 */
import { AbortedError, RetryableError, ValidationError } from '@gambit/shared';
import { admissionKeys, chargeOnce, toolKeys } from '@gambit/shared/redis';
import { OutboundGuard, OutboundRefusedError } from '../outbound.js';
import { type ToolContext, type ToolRegistry, numberArg, stringArg } from './registry.js';

/** Sleeps `ms`, rejecting with AbortedError when the signal aborts. Clears its timer either way. */
export function sleepOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new AbortedError('aborted'));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const HTTP_BODY_LIMIT = 64 * 1024;

/** `args.url` as an absolute http(s) URL, or a ValidationError naming the field. */
function httpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError([{ path: 'args.url', message: 'must be an absolute URL' }]);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError([{ path: 'args.url', message: 'must be http or https' }]);
  return url;
}

export interface BuiltinToolOptions {
  /** Simulated latency of kv_lookup before the time scale. */
  readonly kvLatencyMs: number;
  /** Issue 10 item 6: the guard every outbound request of http_get/http_post goes through (default: no trusted origins). */
  readonly outbound?: OutboundGuard;
  /** Issue 10 item 4: the longest `sleep` (ms); longer ones fail without sleeping (WORKER_MAX_SLEEP_MS). */
  readonly maxSleepMs?: number;
}

/** Defaults of the guard when the worker's configuration gives none (the strict policy). */
export const DEFAULT_OUTBOUND = { maxBodyBytes: HTTP_BODY_LIMIT, maxRedirects: 5, timeoutMs: 30_000 } as const;
export const DEFAULT_MAX_SLEEP_MS = 30_000;

/** The tenant's outbound host allow-list (its limits, set by the operator), read at most once a second. */
const allowCache = new Map<string, { atMs: number; hosts: readonly string[] | undefined }>();
async function tenantAllowHosts(ctx: ToolContext): Promise<readonly string[] | undefined> {
  const key = `${ctx.ks.prefix}|${ctx.tenant}`;
  const now = ctx.nowMs();
  const hit = allowCache.get(key);
  if (hit !== undefined && now - hit.atMs < 1_000) return hit.hosts;
  const raw = await ctx.redis.get(admissionKeys(ctx.ks, ctx.tenant).limits);
  const hosts = raw === null ? undefined : ((JSON.parse(raw) as { outboundAllowHosts?: string[] }).outboundAllowHosts ?? undefined);
  if (allowCache.size > 10_000) allowCache.clear();
  allowCache.set(key, { atMs: now, hosts });
  return hosts;
}

export function registerBuiltinTools(registry: ToolRegistry, opts: BuiltinToolOptions): void {
  const outbound = opts.outbound ?? new OutboundGuard({ trustedOrigins: new Set(), ...DEFAULT_OUTBOUND });
  const maxSleepMs = opts.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
  registry.register({
    name: 'echo',
    effects: 'none',
    async run(args) {
      return { output: typeof args.text === 'string' ? args.text : JSON.stringify(args) };
    },
  });

  registry.register({
    name: 'sleep',
    effects: 'none',
    async run(args, ctx) {
      const ms = numberArg(args, 'ms');
      // Issue 10 item 4: a sleep may not hold a worker slot longer than the cap.
      if (ms > maxSleepMs) throw new ValidationError([{ path: 'args.ms', message: `${ms} ms exceeds the worker's cap WORKER_MAX_SLEEP_MS = ${maxSleepMs}` }]);
      await sleepOrAbort(ms, ctx.signal);
      return { output: `slept ${ms} ms` };
    },
  });

  registry.register({
    name: 'kv_lookup',
    effects: 'idempotent',
    async run(args, ctx: ToolContext) {
      const table = stringArg(args, 'table');
      const key = stringArg(args, 'key');
      if (/[{}\s]/.test(table)) throw new ValidationError([{ path: 'args.table', message: 'no braces or whitespace' }]);
      await sleepOrAbort(opts.kvLatencyMs * ctx.timeScale, ctx.signal);
      const value = await ctx.redis.hget(toolKeys(ctx.ks, ctx.tenant).kv(table), key);
      return { output: value ?? '' };
    },
  });

  registry.register({
    name: 'send_message',
    effects: 'staged',
    async run(args) {
      const to = stringArg(args, 'to');
      const body = stringArg(args, 'body');
      return { output: JSON.stringify({ to, body }), effects: [{ type: 'message', to, body }] };
    },
  });

  registry.register({
    name: 'charge_card',
    effects: 'irreversible',
    honoursIdempotencyKey: true,
    async run(args, ctx) {
      const amountCents = numberArg(args, 'amountCents');
      if (!Number.isInteger(amountCents)) throw new ValidationError([{ path: 'args.amountCents', message: 'must be an integer' }]);
      const confirmMs = args.confirmMs === undefined ? 0 : numberArg(args, 'confirmMs');
      const charge = {
        runId: ctx.runId,
        nodeId: ctx.nodeId,
        attemptId: ctx.attemptId,
        kind: ctx.kind,
        tryNo: ctx.tryNo,
        amountCents,
        atMs: ctx.nowMs(),
      };
      // Issue 11 D2: a retry under the same key gets the charge already made back.
      const r = await chargeOnce(ctx.redis, ctx.ks, { tenant: ctx.tenant, idempotencyKey: ctx.idempotencyKey, charge });
      if (confirmMs > 0) await sleepOrAbort(confirmMs, ctx.signal);
      return { output: JSON.stringify({ charged: r.charge.amountCents }) };
    },
  });

  registry.register({
    name: 'http_get',
    effects: 'none',
    discloses: true,
    async run(args, ctx) {
      const url = httpUrl(stringArg(args, 'url'));
      let res: { status: number; body: string };
      try {
        res = await outbound.request(url, { method: 'GET', signal: ctx.signal, headers: { 'idempotency-key': ctx.idempotencyKey } }, await tenantAllowHosts(ctx));
      } catch (err) {
        if (err instanceof OutboundRefusedError) throw err;
        if (ctx.signal.aborted) throw new AbortedError('aborted', { cause: err });
        throw new RetryableError('PROVIDER_UNAVAILABLE', `http_get ${url.host}: connection failed`, { cause: err });
      }
      const body = res.body;
      if (res.status >= 500) throw new RetryableError('PROVIDER_UNAVAILABLE', `http_get ${url.host}: HTTP ${res.status}`);
      return { output: JSON.stringify({ status: res.status, body }) };
    },
  });

  registry.register({
    name: 'http_post',
    effects: 'irreversible',
    discloses: true,
    honoursIdempotencyKey: true,
    async run(args, ctx) {
      const url = httpUrl(stringArg(args, 'url'));
      const payload = stringArg(args, 'body');
      let res: { status: number; body: string };
      try {
        // Issue 11 D2: every try of this execution sends the same key, so the service applies it once.
        res = await outbound.request(
          url,
          { method: 'POST', signal: ctx.signal, headers: { 'content-type': 'application/json', 'idempotency-key': ctx.idempotencyKey }, body: payload },
          await tenantAllowHosts(ctx),
        );
      } catch (err) {
        if (err instanceof OutboundRefusedError) throw err;
        if (ctx.signal.aborted) throw new AbortedError('aborted', { cause: err });
        throw new RetryableError('PROVIDER_UNAVAILABLE', `http_post ${url.host}: connection failed`, { cause: err });
      }
      const body = res.body;
      if (res.status >= 500) throw new RetryableError('PROVIDER_UNAVAILABLE', `http_post ${url.host}: HTTP ${res.status}`);
      return { output: JSON.stringify({ status: res.status, body }) };
    },
  });
}
