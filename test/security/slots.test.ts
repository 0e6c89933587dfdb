/**
 * Issue 10 item 4, slot-holding: four `sleep` operations used to hold every worker slot for as
 * long as a workflow asked. A sleep above WORKER_MAX_SLEEP_MS now fails at once without holding
 * a slot, and other work keeps running on the same worker (real worker process).
 */
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { opQueues, readRecord, startWorker, submit, toolJob, waitFor } from '../worker/helpers.js';

describe('sleep is capped (issue 10 item 4)', () => {
  const redisUrl = inject('redisUrl');
  let redis: Redis;
  let prefix: string;
  let queues: ReturnType<typeof opQueues>;
  let worker: ServiceProcess;

  beforeAll(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    prefix = uniquePrefix('slots');
    queues = opQueues(redis, { prefix });
    worker = await startWorker({ redisUrl, prefix, env: { WORKER_CONCURRENCY: '4', WORKER_MAX_SLEEP_MS: '2000' } });
  }, 60_000);

  afterAll(async () => {
    await worker?.stop(5_000);
    await queues?.close();
    await redis?.quit();
  });

  it('four hour-long sleeps fail at once; an echo behind them runs within a second', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: `s${i}`, nodeId: 'z', attemptId: 'a1', tool: 'sleep', args: { ms: 3_600_000 }, effects: 'none' }));
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'e', nodeId: 'x', attemptId: 'a1', tool: 'echo', args: { text: 'still served' }, effects: 'none' }));
    const echo = await waitFor(() => readRecord(redis, { prefix }, 'acme', 'e', 'a1'), (r) => r.status === 'succeeded' || r.status === 'failed', 10_000, 'echo');
    expect(echo.output).toBe('still served');
    for (let i = 0; i < 4; i++) {
      const rec = await waitFor(() => readRecord(redis, { prefix }, 'acme', `s${i}`, 'a1'), (r) => r.status === 'succeeded' || r.status === 'failed', 10_000, `sleep ${i}`);
      expect(rec.status).toBe('failed');
      expect(rec.error).toMatch(/WORKER_MAX_SLEEP_MS = 2000/);
    }
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
