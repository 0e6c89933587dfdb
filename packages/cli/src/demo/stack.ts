/**
 * Starts the whole system as separate processes for the demo: Redis (the one at REDIS_URL when it
 * answers, else a private redis-server on a free port), one estimator, one scheduler and N
 * workers, each a real child process running its service's dist/main.js. `stop()` shuts them down
 * in reverse order (SIGTERM, then SIGKILL after a grace period) and is idempotent.
 */
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startProcess, startRedis, type RedisHandle, type ServiceProcess } from '@gambit/testkit';

export interface StackOptions {
  readonly workers: number;
  readonly timeScale: number;
  readonly prefix: string;
  readonly port: number;
  readonly logLevel: string;
  /** The scheduler's operator key and key-HMAC secret (GAMBIT_ADMIN_KEY, GAMBIT_KEY_HMAC_SECRET). */
  readonly adminKey: string;
  readonly keyHmacSecret: string;
  readonly extraEnv?: Record<string, string | undefined>;
  /**
   * Issue 10 item 8: start the workers with GAMBIT_SIMULATED_FALLBACK=1, so a node naming
   * `openai`, `anthropic` or `local` with no key runs simulated (reported as `simulated`) instead
   * of failing. The demo turns it on, and says so, when no provider key is set.
   */
  readonly simulatedFallback?: boolean;
}

export interface Stack {
  readonly redisUrl: string;
  readonly startedRedis: boolean;
  readonly baseUrl: string;
  readonly processes: readonly ServiceProcess[];
  stop(): Promise<void>;
}

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const main = (svc: string) => `${root}services/${svc}/dist/main.js`;

async function reachable(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export async function startStack(opts: StackOptions, onStatus: (msg: string) => void): Promise<Stack> {
  let redis: RedisHandle | undefined;
  let redisUrl = process.env.REDIS_URL;
  if (redisUrl === undefined || !(await reachable(redisUrl))) {
    if (redisUrl !== undefined) onStatus(`Redis at ${redisUrl} does not answer; starting a local redis-server`);
    redis = await startRedis();
    redisUrl = redis.url;
    onStatus(`started redis-server on ${redisUrl}`);
  } else onStatus(`using Redis at ${redisUrl}`);

  const procs: ServiceProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      for (const p of [...procs].reverse()) await p.stop(8_000);
      await redis?.stop();
    })();
    return stopped;
  };
  const common = {
    REDIS_URL: redisUrl,
    GAMBIT_PREFIX: opts.prefix,
    LOG_LEVEL: opts.logLevel,
    ...opts.extraEnv,
  };
  try {
    const est = startProcess('estimator', main('estimator'), [], { ...common, ESTIMATOR_HEARTBEAT_MS: '500' });
    procs.push(est);
    await est.waitForLine((l) => l.includes('estimator ready'), 30_000);
    for (let i = 0; i < opts.workers; i++) {
      const w = startProcess(`worker-${i + 1}`, main('worker'), [], {
        ...common,
        WORKER_ID: `demo-worker-${i + 1}`,
        GAMBIT_SIM_TIME_SCALE: String(opts.timeScale),
        WORKER_CONCURRENCY: '16',
        WORKER_SPEC_CONCURRENCY: '8',
        ...(opts.simulatedFallback === true ? { GAMBIT_SIMULATED_FALLBACK: '1' } : {}),
      });
      procs.push(w);
      await w.waitForLine((l) => l.includes('worker ready'), 30_000);
    }
    const sch = startProcess('scheduler', main('scheduler'), [], {
      ...common,
      PORT: String(opts.port),
      GAMBIT_ADMIN_KEY: opts.adminKey,
      GAMBIT_KEY_HMAC_SECRET: opts.keyHmacSecret,
    });
    procs.push(sch);
    const line = await sch.waitForLine((l) => l.includes('scheduler listening'), 30_000);
    const port = (JSON.parse(line) as { port: number }).port;
    onStatus(`estimator, ${opts.workers} worker(s) and scheduler are up (pids ${procs.map((p) => p.proc.pid).join(', ')})`);
    return { redisUrl, startedRedis: redis !== undefined, baseUrl: `http://127.0.0.1:${port}`, processes: procs, stop };
  } catch (err) {
    const tail = procs.flatMap((p) => p.lines.slice(-5).map((l) => `[${p.name}] ${l}`)).join('\n');
    await stop();
    throw new Error(`could not start the services: ${(err as Error).message}\n${tail}`);
  }
}
