/**
 * Waiting for Redis at start-up (issue 11, found by the chaos campaign): a service started while
 * Redis is unreachable waits for it with a bounded number of attempts, logs one line per failed
 * attempt, and only then gives up with a clear error. Each service starts its ops listener before
 * waiting, so /healthz answers 200 (alive) and /readyz 503 (not ready) for the whole wait.
 */
import type { Logger } from '../logger.js';
import type { RedisLike } from './scripts.js';

/** Defaults: one attempt a second for two minutes. */
export const REDIS_STARTUP_ATTEMPTS = 120;
export const REDIS_STARTUP_INTERVAL_MS = 1_000;

/** Replies that mean the server refused this client's user or password (not an outage). */
const AUTH_REFUSED = /^(NOAUTH|WRONGPASS|NOPERM)\b|invalid username-password/;

/**
 * Node's codes for a server certificate this client does not trust (issue 10 item 10): wrong or
 * missing REDIS_TLS_CA_FILE, a name not in the certificate, an expired one. Like refused
 * credentials, these do not heal by waiting.
 */
const TLS_UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Start-up stopped: the Redis server's TLS certificate is not trusted (a setting to fix, not an outage). */
export class RedisTlsUntrustedError extends Error {
  constructor(
    readonly connection: string,
    readonly code: string,
    cause: Error,
  ) {
    super(
      `Redis connection ${connection} failed the TLS handshake at start-up: the server's certificate is not trusted (check REDIS_TLS_CA_FILE, and that the host in REDIS_URL is in the certificate): ${code}: ${cause.message}`,
      { cause },
    );
    this.name = 'RedisTlsUntrustedError';
  }
}

/** The client's connection errors, where it has them (ioredis emits `error`). */
interface ErrorSource {
  on?(event: 'error', fn: (err: unknown) => void): unknown;
  off?(event: 'error', fn: (err: unknown) => void): unknown;
}

export interface WaitForRedisOptions {
  /** The connection's name in log lines and in the error, e.g. `redis` or `redis_subscriber`. */
  readonly name: string;
  readonly attempts?: number;
  /** Time between the start of one attempt and the next; also each PING's deadline. */
  readonly intervalMs?: number;
}

/**
 * Resolves once a PING on `client` succeeds. A PING that fails or takes longer than the interval
 * counts as a failed attempt (logged at warn with the attempt number and the error). After the
 * last attempt it throws, naming the connection, the attempts and the last error.
 */
export async function waitForRedis(client: RedisLike, log: Logger, opts: WaitForRedisOptions): Promise<void> {
  const attempts = opts.attempts ?? REDIS_STARTUP_ATTEMPTS;
  const intervalMs = opts.intervalMs ?? REDIS_STARTUP_INTERVAL_MS;
  if (!Number.isInteger(attempts) || attempts < 1) throw new Error(`waitForRedis: attempts must be an integer >= 1, got ${attempts}`);
  if (!(intervalMs > 0)) throw new Error(`waitForRedis: intervalMs must be > 0, got ${intervalMs}`);
  // A certificate the client does not trust shows only as a connection `error` (the PING stays
  // queued), so the client's errors are watched for it while waiting.
  let rejectUntrusted: ((err: Error) => void) | undefined;
  const untrusted = new Promise<never>((_, reject) => {
    rejectUntrusted = reject;
  });
  untrusted.catch(() => undefined);
  const onError = (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && TLS_UNTRUSTED.has(code))
      rejectUntrusted?.(new RedisTlsUntrustedError(opts.name, code, err as Error));
  };
  const source = client as unknown as ErrorSource;
  source.on?.('error', onError);
  try {
    return await waitLoop(client, log, opts, attempts, intervalMs, untrusted);
  } finally {
    source.off?.('error', onError);
  }
}

async function waitLoop(client: RedisLike, log: Logger, opts: WaitForRedisOptions, attempts: number, intervalMs: number, untrusted: Promise<never>): Promise<void> {
  let lastError = 'no attempt made';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const startedAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`PING took longer than ${intervalMs} ms`)), intervalMs);
    });
    const ping = client.ping();
    // A PING queued on a connection that never gives up settles later; its outcome is not needed.
    ping.catch(() => undefined);
    try {
      await Promise.race([ping, timeout, untrusted]);
      clearTimeout(timer);
      if (attempt > 1) log.info({ connection: opts.name, attempt }, 'redis reachable');
      return;
    } catch (err) {
      clearTimeout(timer);
      if (err instanceof RedisTlsUntrustedError) throw err;
      lastError = err instanceof Error ? err.message : String(err);
      // Issue 10 item 10: refused credentials do not heal by waiting; stop at once and say so.
      if (AUTH_REFUSED.test(lastError))
        throw new Error(`Redis connection ${opts.name} refused the credentials at start-up (check REDIS_USERNAME, REDIS_PASSWORD and REDIS_URL): ${lastError}`);
      log.warn({ connection: opts.name, attempt, attempts, error: lastError }, 'waiting for redis');
    }
    const rest = intervalMs - (Date.now() - startedAt);
    if (attempt < attempts && rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
  }
  throw new Error(`Redis connection ${opts.name} unreachable at start-up after ${attempts} attempts ${intervalMs} ms apart: ${lastError}`);
}
