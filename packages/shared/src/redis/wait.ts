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
      await Promise.race([ping, timeout]);
      clearTimeout(timer);
      if (attempt > 1) log.info({ connection: opts.name, attempt }, 'redis reachable');
      return;
    } catch (err) {
      clearTimeout(timer);
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
