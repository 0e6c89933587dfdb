/**
 * Waiting for Redis at start-up (issue 11; the chaos campaign found the estimator exiting with
 * MaxRetriesPerRequestError instead): the scheduler, worker and estimator are started as real
 * processes with REDIS_URL pointing at a port where nothing listens. Each stays alive, logs one
 * `waiting for redis` line per attempt, answers /healthz 200 and /readyz 503; once a real
 * redis-server starts on that port each becomes ready, and the scheduler's API answers.
 */
import { freePort, type RedisHandle, type ServiceProcess, startProcess, startRedis, uniquePrefix } from '@gambit/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { newSecrets, SCHEDULER_MAIN, WORKER_MAIN } from '../e2e/harness.js';
import { ESTIMATOR_MAIN } from '../estimator/procs.js';
import { opsPort, until } from './helpers.js';

async function status(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

function waitingLines(p: ServiceProcess): number {
  return p.lines.filter((l) => l.includes('"msg":"waiting for redis"')).length;
}

describe('every service waits for Redis at start-up', () => {
  let redis: RedisHandle | undefined;
  const procs: ServiceProcess[] = [];

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(8_000)));
    await redis?.stop();
  });

  it('alive and not ready while Redis is unreachable, ready and working once it starts', async () => {
    const port = await freePort();
    const common = { REDIS_URL: `redis://127.0.0.1:${port}`, GAMBIT_PREFIX: uniquePrefix('startup').replace(/:/g, '_'), OPS_PORT: '0', LOG_LEVEL: 'info' };
    const sched = startProcess('scheduler', SCHEDULER_MAIN, [], { ...common, ...newSecrets(), PORT: '0', REQUIRE_ESTIMATOR_HEARTBEAT: 'false' });
    const worker = startProcess('worker', WORKER_MAIN, [], common);
    const estimator = startProcess('estimator', ESTIMATOR_MAIN, [], { ...common, ESTIMATOR_ID: 'startup-est' });
    procs.push(sched, worker, estimator);
    const urls = new Map<ServiceProcess, string>();
    for (const p of procs) urls.set(p, `http://127.0.0.1:${await opsPort(p)}`);

    // Several attempts pass (one a second) with nothing listening: each is logged, none is fatal.
    for (const p of procs) await until(`${p.name} logged 3 attempts`, async () => (waitingLines(p) >= 3 ? true : undefined), 30_000);
    for (const p of procs) {
      const base = urls.get(p) as string;
      expect(p.proc.exitCode, `${p.name} still running`).toBeNull();
      expect(await status(`${base}/healthz`), `${p.name} /healthz`).toBe(200);
      expect(await status(`${base}/readyz`), `${p.name} /readyz`).toBe(503);
      expect(p.lines.some((l) => l.includes('MaxRetriesPerRequestError') && l.includes('failed')), `${p.name} did not fail`).toBe(false);
    }
    expect(sched.lines.some((l) => l.includes('"scheduler listening"'))).toBe(false);

    redis = await startRedis({ port });
    for (const p of procs) await until(`${p.name} ready`, async () => ((await status(`${urls.get(p)}/readyz`)) === 200 ? true : undefined), 30_000);
    const apiLine = await sched.waitForLine((l) => l.includes('"scheduler listening"'), 30_000);
    const apiPort = (JSON.parse(apiLine) as { port: number }).port;
    expect(await status(`http://127.0.0.1:${apiPort}/readyz`)).toBe(200);
    await estimator.waitForLine((l) => l.includes('"estimator ready"'), 10_000);
    await worker.waitForLine((l) => l.includes('"worker ready"'), 10_000);
    for (const p of procs) expect(p.proc.exitCode, `${p.name} still running`).toBeNull();
  }, 120_000);
});
