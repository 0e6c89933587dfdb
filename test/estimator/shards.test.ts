/**
 * Issue 13 item 4, the estimator's side: the outcomes split over GAMBIT_OUTCOME_SHARDS streams under
 * their own hash tags (keys.ts outcomeStreams). A ControlPlane publishes a class's outcomes to the
 * class's shard; estimator processes read every shard and count each outcome once; an estimator
 * that reads fewer shards than hold unread outcomes refuses to start; on the local three-master
 * Cluster the shard streams sit on different masters and the estimator applies outcomes from all.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ControlPlane, type Outcome, silentLogger, systemClock } from '@gambit/shared';
import { classKeys, outcomeShardOf, outcomeStreams } from '@gambit/shared/redis';
import { type RedisClusterHandle, type ServiceProcess, startProcess, startRedisCluster, uniquePrefix } from '@gambit/testkit';
import { waitFor } from './helpers.js';
import { ESTIMATOR_MAIN, estimatorReady, startEstimator } from './procs.js';

const url = inject('redisUrl');
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});
let cluster: RedisClusterHandle | undefined;
beforeAll(async () => {
  cluster = await startRedisCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

let seq = 0;
function outcome(classId: string, kind: Outcome['kind']): Outcome {
  seq++;
  return {
    outcomeId: `so${seq}`, decisionId: `d${seq}`, tenant: 't1', workflow: 'w', runId: `r${seq}`, edgeClass: classId,
    kind, wasteUsd: 0, secondsSaved: 0, fencingViolation: false, atMs: Date.now(),
  };
}

async function pending(r: Redis | Cluster, stream: string): Promise<number> {
  return Number(((await r.xpending(stream, 'estimators')) as [number])[0]);
}

describe('issue 13 item 4: outcome stream shards', () => {
  it('a class goes to one shard; two estimators read all four shards and count every outcome once', async () => {
    const prefix = uniquePrefix('shards');
    const ks = { prefix };
    const r = new Redis(url);
    closers.push(() => r.quit());
    const cp = new ControlPlane(url, ks, systemClock, silentLogger, { outcomeShards: 4 });
    closers.push(() => cp.close());
    const classes = Array.from({ length: 12 }, (_, i) => `c${i}`);
    for (const c of classes) await cp.ensureClass(c, { depType: 'lookup', prior: { a: 8, b: 2 }, initialStage: 'shadow', tenant: 't1' });
    const streams = outcomeStreams(ks, 4);
    const sent: Outcome[] = [];
    for (let i = 0; i < 240; i++) {
      const o = outcome(classes[i % classes.length] as string, i % 4 === 0 ? 'shadow_miss' : 'shadow_hit');
      sent.push(o);
      await cp.publishOutcome(o);
      if (i % 5 === 0) await cp.publishOutcome(o); // a redelivery
    }
    // Each class's outcomes are in its own shard only, and the classes use more than one shard.
    const lens = await Promise.all(streams.map((s) => r.xlen(s)));
    expect(lens.filter((n) => n > 0).length).toBeGreaterThan(1);
    for (const [i, s] of streams.entries()) {
      const entries = await r.xrange(s, '-', '+');
      for (const [, f] of entries) expect(outcomeShardOf((JSON.parse(f[1] as string) as Outcome).edgeClass, 4)).toBe(i);
    }
    const ests = ['e1', 'e2'].map((n) => {
      const p = startEstimator(n, url, prefix, { GAMBIT_OUTCOME_SHARDS: '4', ESTIMATOR_BATCH: '20' });
      closers.push(() => p.stop());
      return p;
    });
    await Promise.all(ests.map(estimatorReady));
    const total = async () => {
      let n = 0;
      for (const c of classes) n += Number((await r.hget(classKeys(ks, c).posterior, 'n')) ?? 0);
      return n;
    };
    await waitFor(async () => (await total()) === 240 && (await Promise.all(streams.map((s) => pending(r, s)))).every((p) => p === 0), 30_000, 'all shards applied and acked');
    for (const c of classes) {
      const mine = sent.filter((o) => o.edgeClass === c);
      const hits = mine.filter((o) => o.kind === 'shadow_hit').length;
      expect(await r.hmget(classKeys(ks, c).posterior, 'hits', 'misses')).toEqual([String(hits), String(mine.length - hits)]);
    }
    await Promise.all(ests.map((p) => p.stop()));
    const counters = ests.map((p) => JSON.parse(p.lines.find((l) => l.includes('estimator stopped')) ?? '{}') as { applied: number; duplicates: number });
    expect(counters.reduce((s, c) => s + c.applied, 0)).toBe(240);
    expect(counters.reduce((s, c) => s + c.duplicates, 0)).toBe(48);
  });

  it('an estimator reading fewer shards than hold unread outcomes refuses to start, naming the variable', async () => {
    const prefix = uniquePrefix('shards-guard');
    const ks = { prefix };
    const cp = new ControlPlane(url, ks, systemClock, silentLogger, { outcomeShards: 4 });
    closers.push(() => cp.close());
    const r = new Redis(url);
    closers.push(() => r.quit());
    // A class whose shard is not 0.
    const c = Array.from({ length: 50 }, (_, i) => `g${i}`).find((x) => outcomeShardOf(x, 4) !== 0) as string;
    await cp.publishOutcome(outcome(c, 'shadow_hit'));
    const e = startEstimator('e1', url, prefix, { GAMBIT_OUTCOME_SHARDS: '1' });
    closers.push(() => e.stop());
    expect(await e.exited()).not.toBe(0);
    expect(e.lines.join('\n')).toMatch(/GAMBIT_OUTCOME_SHARDS: outcome stream .*\(shard [123]\) holds entries but this estimator reads only 1 shard/);
    // With the same count it starts and applies the outcome.
    const ok = startEstimator('e2', url, prefix, { GAMBIT_OUTCOME_SHARDS: '4' });
    closers.push(() => ok.stop());
    await estimatorReady(ok);
    await waitFor(async () => (await r.hget(classKeys(ks, c).posterior, 'n')) === '1', 15_000, 'outcome applied');
  });

  it('on the three-master Cluster the shards sit on different masters and one estimator applies them all', async () => {
    const nodes = cluster?.nodes ?? [];
    const prefix = uniquePrefix('shards-cl');
    const ks = { prefix };
    const redis = new Cluster([...nodes]);
    closers.push(async () => redis.disconnect());
    const streams = outcomeStreams(ks, 6);
    // Which master serves each stream's slot.
    const slots = (await redis.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
    const masterOf = async (key: string) => {
      const slot = Number(await redis.cluster('KEYSLOT', key));
      const range = slots.find(([lo, hi]) => slot >= lo && slot <= hi);
      return range === undefined ? 'none' : `${range[2][0]}:${range[2][1]}`;
    };
    const masters = new Set(await Promise.all(streams.map(masterOf)));
    expect(masters.size).toBeGreaterThan(1);
    const cp = new ControlPlane(redis, ks, systemClock, silentLogger, { outcomeShards: 6 });
    closers.push(() => cp.close());
    const est: ServiceProcess = startProcess('estimator', ESTIMATOR_MAIN, [], {
      REDIS_CLUSTER_NODES: nodes.map((n) => `${n.host}:${n.port}`).join(','),
      GAMBIT_PREFIX: prefix,
      GAMBIT_OUTCOME_SHARDS: '6',
      ESTIMATOR_ID: 'cl1',
      ESTIMATOR_HEARTBEAT_MS: '200',
      LOG_LEVEL: 'info',
    });
    closers.push(() => est.stop());
    await estimatorReady(est);
    const classes = Array.from({ length: 12 }, (_, i) => `k${i}`);
    for (const c of classes) await cp.ensureClass(c, { depType: 'passthrough', prior: { a: 9, b: 1 }, initialStage: 'shadow', tenant: 't1' });
    for (let i = 0; i < 120; i++) await cp.publishOutcome(outcome(classes[i % 12] as string, 'shadow_hit'));
    const used = new Set(classes.map((c) => streams[outcomeShardOf(c, 6)] as string));
    expect(new Set(await Promise.all([...used].map(masterOf))).size).toBeGreaterThan(1);
    await waitFor(async () => {
      const ns = await Promise.all(classes.map((c) => redis.hget(classKeys(ks, c).posterior, 'n')));
      return ns.every((n) => n === '10');
    }, 20_000, 'outcomes of every shard applied');
    await waitFor(async () => (await Promise.all([...used].map((s) => pending(redis, s)))).every((p) => p === 0), 10_000, 'acked');
  });
});
