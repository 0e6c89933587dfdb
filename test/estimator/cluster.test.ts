/**
 * The estimator and the ControlPlane on a local three-master Redis Cluster: every script's keys
 * share one hash-tag slot, the consumer group works on the cluster, and an alarm reaches a
 * ControlPlane built on a `Cluster` client (pub/sub is cluster-wide).
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane, type Outcome, silentLogger, systemClock } from '@gambit/shared';
import { classKeys } from '@gambit/shared/redis';
import { type RedisClusterHandle, startProcess, startRedisCluster, uniquePrefix } from '@gambit/testkit';
import { waitFor } from './helpers.js';
import { ESTIMATOR_MAIN, estimatorReady } from './procs.js';

let cluster: RedisClusterHandle | undefined;
beforeAll(async () => {
  cluster = await startRedisCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('M9 estimator on Redis Cluster', () => {
  it('applies outcomes, moves the class to killed on drift and the Cluster-based ControlPlane pauses it', async () => {
    const nodes = cluster?.nodes ?? [];
    const prefix = uniquePrefix('est-cluster');
    const redis = new Cluster([...nodes]);
    const cp = new ControlPlane(redis, { prefix }, systemClock, silentLogger, { pollMs: 100 });
    const est = startProcess('estimator', ESTIMATOR_MAIN, [], {
      REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(','),
      GAMBIT_PREFIX: prefix,
      ESTIMATOR_ID: 'cl1',
      ESTIMATOR_HEARTBEAT_MS: '200',
      LOG_LEVEL: 'info',
    });
    try {
      await estimatorReady(est);
      await cp.ready();
      await waitFor(() => cp.heartbeatFresh(), 10_000, 'heartbeat through the cluster');
      const classes = ['x1', 'x2', 'x3', 'x4'];
      for (const c of classes) await cp.ensureClass(c, { depType: 'passthrough', prior: { a: 90, b: 10 }, initialStage: 'online', tenant: 't1' });
      let i = 0;
      const o = (classId: string, kind: Outcome['kind']): Outcome => {
        i++;
        return { outcomeId: `o${i}`, decisionId: `d${i}`, tenant: 't1', workflow: 'w', runId: `r${i}`, edgeClass: classId, kind, wasteUsd: 0, secondsSaved: 0, fencingViolation: false, atMs: Date.now() };
      };
      // 60 hits of history per class: the drift detector (M9.5) compares recent outcomes with the
      // class's own earlier ones and needs tail.minReference of them.
      for (const c of classes) for (let j = 0; j < 60; j++) await cp.publishOutcome(o(c, 'hit'));
      await waitFor(async () => {
        const ns = await Promise.all(classes.map((c) => redis.hget(classKeys({ prefix }, c).posterior, 'n')));
        return ns.every((n) => n === '60');
      }, 15_000, 'outcomes applied on every class');
      expect(cp.speculationBlocked('t1', 'x1').blocked).toBe(false);
      const slots = await Promise.all(classes.map((c) => redis.cluster('KEYSLOT', classKeys({ prefix }, c).posterior) as Promise<number>));
      expect(new Set(slots).size).toBeGreaterThan(1);
      for (let j = 0; j < 30; j++) await cp.publishOutcome(o('x1', 'miss'));
      await waitFor(() => cp.speculationBlocked('t1', 'x1').scope === 'class', 15_000, 'class kill seen through cluster pub/sub');
      expect(cp.speculationBlocked('t1', 'x2').blocked).toBe(false);
      // The estimator writes the kill switch first, then the stage (processor.ts `transition`):
      // the kill can be seen through pub/sub one round trip before the stage is written.
      await waitFor(async () => (await redis.hget(classKeys({ prefix }, 'x1').posterior, 'stage')) === 'killed', 5_000, 'stage killed after the kill');
      expect(await redis.hget(classKeys({ prefix }, 'x1').posterior, 'stage')).toBe('killed');
    } finally {
      await est.stop();
      await cp.close();
      redis.disconnect();
    }
  });
});
