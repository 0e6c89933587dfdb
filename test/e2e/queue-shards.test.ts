/**
 * Issue 13 item 4, queue shards on a local three-master Redis Cluster: with QUEUE_SHARDS=3 the
 * `ops`/`spec` queues, their fair-dispatch keys and the advance streams live under three hash
 * tags, one per master;
 * runs of tenants of every shard complete (speculation on, two workers serving every shard), and
 * each master holds queue keys. A process with another QUEUE_SHARDS, or a bad value, refuses to
 * start with an error naming the variable.
 */
import { keySlot, queueShardOf, queueShardPrefixes } from '@gambit/shared/redis';
import { type RedisClusterHandle, startProcess, startRedisCluster } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eagerTenant, http, newTenant, type RunView, type Stack, startStack, WORKER_MAIN, SCHEDULER_MAIN, waitForRun } from './harness.js';
import { routerChain } from './workflows.js';

const SHARDS = 3;
/** Slots per worker and lane: few, so that the worker's cap over its three BullMQ workers per lane is reached. */
const OPS_SLOTS = 2;
const SPEC_SLOTS = 1;

/** The most attempts running at once among `spans` ([start, finish] ms; touching ends do not overlap). */
function maxOverlap(spans: Array<[number, number]>): number {
  const edges = spans.flatMap(([a, b]) => [
    [a, 1],
    [b, -1],
  ]);
  // At equal times an end comes before a start.
  edges.sort((x, y) => (x[0] as number) - (y[0] as number) || (x[1] as number) - (y[1] as number));
  let now = 0;
  let most = 0;
  for (const [, d] of edges) {
    now += d as number;
    most = Math.max(most, now);
  }
  return most;
}

/** The master that serves `slot` (CLUSTER SLOTS of any node). */
async function masterOf(nodes: ReadonlyArray<{ host: string; port: number }>, slot: number): Promise<number> {
  const r = new Redis(nodes[0]?.port ?? 0, nodes[0]?.host ?? '127.0.0.1');
  try {
    const slots = (await r.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
    const row = slots.find(([lo, hi]) => slot >= lo && slot <= hi);
    if (row === undefined) throw new Error(`no master serves slot ${slot}`);
    return row[2][1];
  } finally {
    r.disconnect();
  }
}

/** Keys under the queue tags of `prefix` on each master (SCAN of that node only), by port. */
async function queueKeysByMaster(nodes: ReadonlyArray<{ host: string; port: number }>, prefix: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const n of nodes) {
    const r = new Redis(n.port, n.host);
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await r.scan(cursor, 'MATCH', `{${prefix}:q*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      out.set(n.port, keys);
    } finally {
      r.disconnect();
    }
  }
  return out;
}

describe('queue shards on a three-master Redis Cluster', () => {
  let cluster: RedisClusterHandle | undefined;
  let stack: Stack | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    stack = await startStack(
      { kind: 'cluster', nodes: cluster.nodes },
      { label: 'e2e-shards', schedulers: 1, workers: 2, schedulerEnv: { QUEUE_SHARDS: String(SHARDS) }, workerEnv: { QUEUE_SHARDS: String(SHARDS), WORKER_CONCURRENCY: String(OPS_SLOTS), WORKER_SPEC_CONCURRENCY: String(SPEC_SLOTS) },
      },
    );
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  it('runs of tenants of every shard complete, and the queue keys are spread over the masters', async () => {
    if (stack === undefined || cluster === undefined) throw new Error('not started');
    const url = stack.urls[0] as string;
    const ks = { prefix: stack.prefix };
    // Tenants chosen so that every shard serves two of them.
    const tenants: string[] = [];
    const perShard = new Map<number, number>();
    while (tenants.length < 2 * SHARDS) {
      const t = newTenant('shard');
      const s = queueShardOf(t, SHARDS);
      if ((perShard.get(s) ?? 0) >= 2) continue;
      perShard.set(s, (perShard.get(s) ?? 0) + 1);
      const r = await http(url, 'PUT', `/v1/tenants/${t}/config`, { alpha: 1, lambdaUsdPerSec: 10, initialStage: 'online' });
      expect(r.status).toBe(200);
      tenants.push(t);
    }
    // All at once, so that more jobs are ready than the workers have slots.
    const submitted = await Promise.all(
      tenants.flatMap((tenant) =>
        [0, 1, 2].map(async (i) => {
          // A hit on even runs, a miss on odd ones: both lanes, cancellations included.
          const wf = routerChain(`wf${i}`, 'billing', i % 2 === 0 ? 'billing' : 'refund', { routerTtftMs: 300, downTtftMs: 300 });
          const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: `q${i}` } });
          expect(r.status).toBe(201);
          return { tenant, runId: r.body.runId as string };
        }),
      ),
    );
    const views: RunView[] = await Promise.all(submitted.map((s) => waitForRun(url, s.tenant, s.runId, 60_000)));
    for (const v of views) {
      expect(v.status).toBe('succeeded');
      expect(v.nodes.answer.output).toBe('answer for billing');
    }
    expect(views.some((v) => v.nodes.answer.attempts.some((a: RunView) => a.kind === 'speculative' && a.status === 'succeeded'))).toBe(true);

    // Slot accounting: each worker serves three shards (three BullMQ workers per lane) and still
    // runs at most its slots of each lane at once, and reaches them.
    const spans = new Map<string, Array<[number, number]>>();
    for (const v of views)
      for (const node of Object.values(v.nodes) as RunView[])
        for (const a of node.attempts as RunView[]) {
          if (typeof a.startedAtMs !== 'number' || typeof a.finishedAtMs !== 'number') continue;
          const key = `${a.workerId}|${a.kind}`;
          spans.set(key, [...(spans.get(key) ?? []), [a.startedAtMs, a.finishedAtMs]]);
        }
    const most = (kind: string) => Math.max(...[...spans.entries()].filter(([k]) => k.endsWith(`|${kind}`)).map(([, s]) => maxOverlap(s)));
    expect([...spans.keys()].filter((k) => k.endsWith('|authoritative'))).toHaveLength(2);
    expect(most('authoritative')).toBe(OPS_SLOTS);
    expect(most('speculative')).toBeLessThanOrEqual(SPEC_SLOTS);

    // Each shard's tag is served by its own master, and each master holds keys of its shard.
    const prefixes = queueShardPrefixes(ks, SHARDS);
    // keySlot is Redis's own slot function (the tags are placed by it).
    for (const p of prefixes) expect(await stack.redis.cluster('KEYSLOT', `${p}:ops:meta`)).toBe(keySlot(p));
    const masters = await Promise.all(prefixes.map((p) => masterOf(cluster?.nodes ?? [], keySlot(p))));
    expect(new Set(masters).size).toBe(SHARDS);
    const byMaster = await queueKeysByMaster(cluster.nodes, stack.prefix);
    for (const [i, p] of prefixes.entries()) {
      const keys = byMaster.get(masters[i] as number) ?? [];
      // BullMQ's queue keys (e.g. the event stream) and the fair-dispatch keys of the shard.
      expect(keys.some((k) => k.startsWith(`${p}:ops:`))).toBe(true);
      expect(keys.some((k) => k.startsWith(`${p}:fair:`))).toBe(true);
      // The shard's advance stream (its tenants' events), with the schedulers' group.
      expect(keys).toContain(`${p}:advance:events`);
    }
    expect([...byMaster.values()].filter((keys) => keys.some((k) => k.startsWith(`{${stack?.prefix}:q:`))).length).toBe(SHARDS);
    // Nothing of the queues under the single tag of before: only the count record (and the
    // webhooks queue, which no run here uses).
    const single = [...byMaster.values()].flat().filter((k) => k.startsWith(`{${stack?.prefix}:q}`));
    expect(single.filter((k) => !k.startsWith(`{${stack?.prefix}:q}:webhooks:`))).toEqual([`{${stack.prefix}:q}:shards`]);
    expect(await stack.redis.get(`{${stack.prefix}:q}:shards`)).toBe(String(SHARDS));
  }, 120_000);

  it('a worker or scheduler with another QUEUE_SHARDS refuses to start, naming both values', async () => {
    if (stack === undefined || cluster === undefined) throw new Error('not started');
    const nodes = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
    const common = { REDIS_CLUSTER_NODES: nodes, REDIS_URL: undefined, GAMBIT_PREFIX: stack.prefix, QUEUE_SHARDS: '2', LOG_LEVEL: 'info' };
    const worker = startProcess('worker-2-shards', WORKER_MAIN, [], common);
    expect(await worker.exited()).toBe(1);
    expect(worker.lines.join('\n')).toContain(`QUEUE_SHARDS=2 but the queues of prefix \\"${stack.prefix}\\" are set up with QUEUE_SHARDS=3`);
    const scheduler = startProcess('scheduler-2-shards', SCHEDULER_MAIN, [], {
      ...common,
      PORT: '0',
      REQUIRE_ESTIMATOR_HEARTBEAT: 'false',
      GAMBIT_ADMIN_KEY: stack.adminKey,
      GAMBIT_KEY_HMAC_SECRET: 'x'.repeat(64),
    });
    expect(await scheduler.exited()).toBe(1);
    expect(scheduler.lines.join('\n')).toContain('QUEUE_SHARDS=2 but the queues of prefix');
    // The deployment's own processes go on.
    const t = await eagerTenant(stack.urls[0] as string, 'after');
    const r = await http(stack.urls[0] as string, 'POST', '/v1/runs', { tenant: t, workflow: routerChain('after', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 }), inputs: { q: 'x' } });
    expect((await waitForRun(stack.urls[0] as string, t, r.body.runId as string)).status).toBe('succeeded');
  }, 60_000);

  it.each([
    ['0', WORKER_MAIN],
    ['1.5', WORKER_MAIN],
    ['65', SCHEDULER_MAIN],
    ['three', SCHEDULER_MAIN],
  ])('QUEUE_SHARDS=%s stops the process at start with the variable named', async (value, main) => {
    if (stack === undefined) throw new Error('not started');
    const p = startProcess(`bad-shards-${value}`, main, [], {
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_CLUSTER_NODES: undefined,
      GAMBIT_PREFIX: stack.prefix,
      QUEUE_SHARDS: value,
      GAMBIT_ADMIN_KEY: stack.adminKey,
      GAMBIT_KEY_HMAC_SECRET: 'x'.repeat(64),
    });
    expect(await p.exited()).toBe(1);
    expect(p.lines.join('\n')).toMatch(/(invalid worker configuration|invalid scheduler environment)[^\n]*QUEUE_SHARDS/);
  }, 30_000);
});
