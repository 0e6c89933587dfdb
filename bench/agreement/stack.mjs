// Starts the Gambit services as real child processes against a given Redis URL: one estimator,
// N workers (simulated provider, GAMBIT_SIM_TIME_SCALE) and one scheduler on a free port, in the
// order the demo uses (packages/cli/src/demo/stack.ts). Unlike the demo starter it takes the
// Redis URL and the worker slots as arguments, so a test can point it at the vitest Redis and the
// scale benchmark can fix the per-worker concurrency. `stop()` is idempotent (reverse order).
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startProcess } from '@gambit/testkit';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const main = (svc) => `${ROOT}services/${svc}/dist/main.js`;

/**
 * @param {{ redisUrl: string, prefix: string, workers: number, timeScale: number,
 *   workerConcurrency?: number, specConcurrency?: number, schedulerEnv?: Record<string,string>,
 *   estimatorEnv?: Record<string,string>, logLevel?: string }} opts
 */
export async function startServices(opts) {
  // The scheduler's API secrets (docs/security.md): a fresh operator key for this run.
  const adminKey = `adm_${randomBytes(32).toString('base64url')}`;
  const common = { REDIS_URL: opts.redisUrl, GAMBIT_PREFIX: opts.prefix, LOG_LEVEL: opts.logLevel ?? 'info' };
  const procs = [];
  let stopped;
  const stop = () => {
    stopped ??= (async () => {
      for (const p of [...procs].reverse()) await p.stop(8_000);
    })();
    return stopped;
  };
  try {
    const est = startProcess('estimator', main('estimator'), [], { ...common, ESTIMATOR_HEARTBEAT_MS: '500', ...opts.estimatorEnv });
    procs.push(est);
    await est.waitForLine((l) => l.includes('estimator ready'), 30_000);
    for (let i = 0; i < opts.workers; i++) {
      const w = startProcess(`worker-${i + 1}`, main('worker'), [], {
        ...common,
        WORKER_ID: `${opts.prefix}-w${i + 1}`,
        GAMBIT_SIM_TIME_SCALE: String(opts.timeScale),
        WORKER_CONCURRENCY: String(opts.workerConcurrency ?? 16),
        WORKER_SPEC_CONCURRENCY: String(opts.specConcurrency ?? 8),
      });
      procs.push(w);
      await w.waitForLine((l) => l.includes('worker ready'), 30_000);
    }
    const sch = startProcess('scheduler', main('scheduler'), [], {
      ...common,
      PORT: '0',
      GAMBIT_ADMIN_KEY: adminKey,
      GAMBIT_KEY_HMAC_SECRET: randomBytes(32).toString('hex'),
      ...opts.schedulerEnv,
    });
    procs.push(sch);
    const line = await sch.waitForLine((l) => l.includes('scheduler listening'), 30_000);
    const { port } = JSON.parse(line);
    return { baseUrl: `http://127.0.0.1:${port}`, adminKey, processes: procs, stop };
  } catch (err) {
    const tail = procs.flatMap((p) => p.lines.slice(-5).map((l) => `[${p.name}] ${l}`)).join('\n');
    await stop();
    throw new Error(`could not start the services: ${err.message}\n${tail}`);
  }
}
