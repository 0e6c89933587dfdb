/**
 * The worker on a real three-master Redis Cluster (ARCHITECTURE.md "many machines"): the attempt
 * scripts' keys share the run's hash tag and the queues share `{P:q}`, so a job runs, is billed,
 * and a cancel broadcast reaches the worker through cluster pub/sub.
 */
import { countTokens } from '@gambit/shared';
import { controlKeys, runKeys } from '@gambit/shared/redis';
import { type RedisClusterHandle, type ServiceProcess, startRedisCluster, uniquePrefix } from '@gambit/testkit';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llmJob, opQueues, readRecord, setStatus, startWorker, submit, waitFor } from './helpers.js';

describe('worker on Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let redis: Cluster;
  let worker: ServiceProcess | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    redis = new Cluster([...cluster.nodes], { redisOptions: { maxRetriesPerRequest: null } });
  });
  afterAll(async () => {
    await worker?.stop(5_000);
    await redis?.quit();
    await cluster?.stop();
  });

  it('runs, bills and cancels attempts across cluster slots', async () => {
    const prefix = uniquePrefix('cluster');
    const ks = { prefix };
    const queues = opQueues(redis, ks);
    try {
      worker = await startWorker({
        redisUrl: 'redis://unused',
        prefix,
        env: { REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(','), GAMBIT_SIM_TIME_SCALE: '1', LOG_LEVEL: 'debug', WORKER_STATUS_CHECK_MS: '60000' },
      });
      // Two runs: their keys hash to different slots (and most likely different masters).
      await submit(redis, ks, queues, llmJob({ tenant: 'acme', runId: 'run-a', nodeId: 'n', attemptId: 'a1', output: 'alpha', ttftMs: 5, tokensPerSec: 500 }));
      await submit(redis, ks, queues, llmJob({ tenant: 'zeta', runId: 'run-z', nodeId: 'n', attemptId: 'a1', output: 'omega', ttftMs: 5, tokensPerSec: 500 }));
      for (const [tenant, runId, out] of [
        ['acme', 'run-a', 'alpha'],
        ['zeta', 'run-z', 'omega'],
      ] as const) {
        const rec = await waitFor(
          () => readRecord(redis, ks, tenant, runId, 'a1'),
          (r) => r.status === 'succeeded',
          20_000,
          `${runId} succeeded`,
        );
        expect(rec.output).toBe(out);
        expect(rec.usage?.outputTokens).toBe(countTokens(out));
        expect(Number(await redis.hget(runKeys(ks, tenant, runId).run, 'costNanoUsd'))).toBe(rec.costNanoUsd);
      }

      const long = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
      await submit(redis, ks, queues, llmJob({ tenant: 'acme', runId: 'run-c', nodeId: 'n', attemptId: 's1', kind: 'speculative', output: long, ttftMs: 5, tokensPerSec: 50, maxTokens: 1000 }));
      await waitFor(
        () => readRecord(redis, ks, 'acme', 'run-c', 's1'),
        (r) => r.status === 'running',
        15_000,
        'running',
      );
      await new Promise((r) => setTimeout(r, 300));
      await setStatus(redis, ks, 'acme', 'run-c', 's1', 'cancelled');
      await redis.publish(controlKeys(ks).cancelChannel, JSON.stringify({ tenant: 'acme', runId: 'run-c', attemptId: 's1', reason: 'miss' }));
      await worker.waitForLine((l) => l.includes('attempt cancelled by broadcast'), 10_000);
      const rec = await waitFor(
        () => readRecord(redis, ks, 'acme', 'run-c', 's1'),
        (r) => r.usage !== undefined,
        10_000,
        'usage recorded',
      );
      expect(rec.status).toBe('cancelled');
      expect(rec.usageEstimated).toBe(true);
      expect(rec.usage?.outputTokens).toBeGreaterThan(0);
      expect(rec.usage?.outputTokens).toBeLessThan(countTokens(long));
    } finally {
      await queues.close();
    }
  });
});
