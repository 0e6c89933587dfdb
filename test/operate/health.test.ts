/**
 * Readiness follows Redis (issue 11 item 4): every service (scheduler, worker, estimator, and the
 * scheduler's API port) answers /readyz 503 within 1 s of its Redis going away, answers every
 * probe within 1 s while Redis is down, keeps answering /healthz 200 (alive), and answers 200
 * again once Redis is back. A real redis-server is killed and restarted on the same port.
 */
import { type RedisHandle, type ServiceProcess, startProcess, startRedis, uniquePrefix } from '@gambit/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSecrets, SCHEDULER_MAIN, WORKER_MAIN } from '../e2e/harness.js';
import { ESTIMATOR_MAIN } from '../estimator/procs.js';
import { opsPort, until } from './helpers.js';

interface Probe {
  readonly name: string;
  readonly url: string;
}

async function probe(url: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t0 };
}

describe('readiness follows Redis in every service', () => {
  let redis: RedisHandle | undefined;
  const procs: ServiceProcess[] = [];
  const probes: Probe[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const common = { REDIS_URL: redis.url, GAMBIT_PREFIX: uniquePrefix('ready').replace(/:/g, '_'), OPS_PORT: '0', LOG_LEVEL: 'warn' };
    const sched = startProcess('scheduler', SCHEDULER_MAIN, [], { ...common, ...newSecrets(), LOG_LEVEL: 'info', PORT: '0', REQUIRE_ESTIMATOR_HEARTBEAT: 'false' });
    const worker = startProcess('worker', WORKER_MAIN, [], { ...common, LOG_LEVEL: 'info' });
    const estimator = startProcess('estimator', ESTIMATOR_MAIN, [], { ...common, LOG_LEVEL: 'info', ESTIMATOR_ID: 'ready-est' });
    procs.push(sched, worker, estimator);
    const apiLine = await sched.waitForLine((l) => l.includes('"scheduler listening"'), 30_000);
    const apiPort = (JSON.parse(apiLine) as { port: number }).port;
    probes.push(
      { name: 'scheduler ops', url: `http://127.0.0.1:${await opsPort(sched)}/readyz` },
      { name: 'scheduler api', url: `http://127.0.0.1:${apiPort}/readyz` },
      { name: 'worker', url: `http://127.0.0.1:${await opsPort(worker)}/readyz` },
      { name: 'estimator', url: `http://127.0.0.1:${await opsPort(estimator)}/readyz` },
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(8_000)));
    await redis?.stop();
  });

  it('503 within 1 s of Redis stopping, 200 after it returns; /healthz stays 200', async () => {
    for (const p of probes) await until(`${p.name} ready`, async () => ((await probe(p.url)).status === 200 ? true : undefined), 30_000);
    const port = redis?.port as number;
    await redis?.stop();
    const stoppedAt = performance.now();
    const wentDown = await Promise.all(
      probes.map(async (p) => {
        let slowest = 0;
        for (;;) {
          const sentAt = performance.now();
          const r = await probe(p.url);
          slowest = Math.max(slowest, r.ms);
          // The moment the probe that saw 503 was sent, after Redis died.
          if (r.status === 503) return { name: p.name, afterMs: sentAt - stoppedAt, slowest };
          if (sentAt - stoppedAt > 10_000) return { name: p.name, afterMs: Number.POSITIVE_INFINITY, slowest };
          await new Promise((res) => setTimeout(res, 20));
        }
      }),
    );
    for (const d of wentDown) {
      expect(d.afterMs, `${d.name}: first 503 probe sent ${d.afterMs.toFixed(0)} ms after Redis stopped`).toBeLessThanOrEqual(1_000);
      expect(d.slowest, `${d.name}: slowest probe`).toBeLessThan(1_000);
    }
    // While Redis is down: every probe answers within 1 s, 503, and liveness stays 200.
    for (const p of probes) {
      const r = await probe(p.url);
      expect(r.status, p.name).toBe(503);
      expect(r.ms, p.name).toBeLessThan(1_000);
      expect((await probe(p.url.replace('/readyz', '/healthz'))).status, p.name).toBe(200);
    }
    redis = await startRedis({ port });
    for (const p of probes) await until(`${p.name} ready again`, async () => ((await probe(p.url)).status === 200 ? true : undefined), 30_000);
    for (const p of procs) expect(p.proc.exitCode, `${p.name} still running`).toBeNull();
  }, 90_000);
});
