/**
 * Issue 13 item 4, queue shards: the fair dispatcher over three shards against a real redis-server
 * and real BullMQ queues. A tenant's jobs stay in its shard (ready list, BullMQ queue, slot
 * counts); each shard hands out up to the registered slots; a release frees the slot of its own
 * shard; the sweep recovers claimed and outstanding jobs of every shard; the advance stream of a
 * tenant is its shard's; the shard count is recorded once and another one refused.
 */
import { silentLogger } from '@gambit/shared';
import {
  AdvanceStream,
  advanceStreams,
  callScript,
  checkQueueShards,
  type FairItem,
  FairDispatcher,
  type FairShard,
  fairKeys,
  keySlot,
  type KeySpace,
  QUEUES,
  queuePrefix,
  queueShardOf,
  queueShardPrefixes,
  queueShardsKey,
} from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';

const SHARDS = 3;
const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const opened: Queue[] = [];
afterAll(async () => {
  await Promise.all(opened.map((q) => q.close()));
  await redis.quit();
});

function setup(label: string): { ks: KeySpace; fair: FairDispatcher; shards: FairShard[] } {
  const ks = { prefix: uniquePrefix(label) };
  const shards = queueShardPrefixes(ks, SHARDS).map((prefix) => {
    const ops = new Queue(QUEUES.ops, { connection: redis, prefix });
    const spec = new Queue(QUEUES.spec, { connection: redis, prefix });
    opened.push(ops, spec);
    return { prefix, ops, spec };
  });
  return { ks, shards, fair: new FairDispatcher(redis, ks, shards, silentLogger) };
}

/** A tenant id of each shard (the first `t<i>` that maps there). */
function tenantOf(shard: number): string {
  for (let i = 0; ; i++) if (queueShardOf(`t${i}`, SHARDS) === shard) return `t${i}`;
}

const item = (tenant: string, n: number, lane: 'ops' | 'spec' = 'ops'): FairItem => ({
  lane,
  tenant,
  jobId: `${tenant}~r${n}~x.a1`,
  name: 'x',
  data: { tenant, n },
  opts: { removeOnComplete: true },
});

describe('queue shards (issue 13 item 4)', () => {
  it('tags: one shard is {P:q}; three are distinct, in the middle of the thirds of the slot space, and stable', () => {
    const ks = { prefix: 'gambit' };
    expect(queueShardPrefixes(ks, 1)).toEqual(['{gambit:q}']);
    const tags = queueShardPrefixes(ks, SHARDS);
    expect(tags.map((t) => t.startsWith('{gambit:q:'))).toEqual([true, true, true]);
    tags.forEach((t, i) => {
      const slot = keySlot(t);
      expect(slot).toBeGreaterThanOrEqual((i * 16384) / SHARDS + 16384 / SHARDS / 4);
      expect(slot).toBeLessThan((i * 16384) / SHARDS + (3 * 16384) / SHARDS / 4);
    });
    expect(queueShardPrefixes({ prefix: 'gambit' }, SHARDS)).toEqual(tags);
    expect(() => queueShardPrefixes(ks, 0)).toThrow(/QUEUE_SHARDS/);
    expect(() => queueShardPrefixes(ks, 65)).toThrow(/QUEUE_SHARDS/);
  });

  it("a tenant's jobs stay in its shard; each shard hands out up to the slots; a release frees its own shard's slot", async () => {
    const { ks, fair, shards } = setup('shards-slots');
    const t = [tenantOf(0), tenantOf(1), tenantOf(2)];
    for (const tenant of t) for (let i = 0; i < 3; i++) expect(await fair.enqueue(item(tenant, i), i)).toBe(true);
    // Ready lists in each tenant's own shard only.
    for (const [s, tenant] of t.entries())
      for (const [o, sh] of shards.entries()) expect(await redis.zcard(fairKeys(ks, 'ops', sh.prefix).ready(tenant))).toBe(o === s ? 3 : 0);
    expect(await fair.pump('ops')).toBe(0);
    // One registration counts in every shard: two slots each.
    await fair.beat('w1', { ops: 2, spec: 0 });
    expect(await fair.pump('ops')).toBe(6);
    for (const [s, sh] of shards.entries()) {
      expect(await sh.ops.getJobCounts('waiting')).toEqual({ waiting: 2 });
      expect(await redis.zrange(fairKeys(ks, 'ops', sh.prefix).out, '0', '-1')).toEqual([`${t[s]}~r0~x.a1`, `${t[s]}~r1~x.a1`]);
    }
    // Nothing in the single tag of before.
    expect(await redis.exists(fairKeys(ks, 'ops').out, fairKeys(ks, 'ops').workers)).toBe(0);
    // A release in shard 1 frees shard 1's slot (the pump fills it there), not another's.
    expect(await fair.release('ops', `${t[1]}~r0~x.a1`, 0)).toBe(false);
    expect(await fair.releaseAndPump('ops', `${t[1]}~r0~x.a1`, 1)).toBe(1);
    expect(await redis.zrange(fairKeys(ks, 'ops', shards[1]?.prefix).out, '0', '-1')).toEqual([`${t[1]}~r1~x.a1`, `${t[1]}~r2~x.a1`]);
    expect(await fair.pump('ops')).toBe(0);
    // A queued job is removed from its tenant's shard and its slot released.
    expect(await fair.removeQueued('ops', t[2] as string, `${t[2]}~r1~x.a1`)).toBe(true);
    expect(await redis.zrange(fairKeys(ks, 'ops', shards[2]?.prefix).out, '0', '-1')).toEqual([`${t[2]}~r0~x.a1`]);
    // A weight is kept in the tenant's shard.
    await fair.setWeight(t[1] as string, 3);
    expect(await redis.hget(fairKeys(ks, 'ops', shards[1]?.prefix).weights, t[1] as string)).toBe('3');
    await fair.leave('w1');
    for (const sh of shards) expect(await redis.hlen(fairKeys(ks, 'ops', sh.prefix).workers)).toBe(0);
  });

  it('the sweep recovers claimed and outstanding jobs of every shard', async () => {
    const { ks, fair, shards } = setup('shards-sweep');
    const tenant = tenantOf(2);
    const sh = shards[2] as FairShard;
    await fair.beat('w1', { ops: 1, spec: 0 });
    await fair.enqueue(item(tenant, 0), 0);
    const k = fairKeys(ks, 'ops', sh.prefix);
    // A pump's claim in shard 2, then the process "dies" before its BullMQ add.
    const reply = await callScript<unknown[]>(redis, 'fairClaim-9.lua', [k.ring, k.deficit, k.weights, k.items, k.claimed, k.out, k.workers, k.owner, k.inuse], ['ops', 64, k.readyPrefix, 5_000, 0, 0]);
    expect(reply.length).toBe(3);
    expect(await fair.sweep(0)).toEqual({ readded: 1, dropped: 0 });
    expect((await sh.ops.getJob(`${tenant}~r0~x.a1`))?.data).toEqual({ tenant, n: 0 });
    await sh.ops.remove(`${tenant}~r0~x.a1`);
    expect(await fair.sweep(0)).toEqual({ readded: 0, dropped: 1 });
    expect(await redis.zcard(k.out)).toBe(0);
  });

  it("a tenant's advance events go to its shard's stream; the backlog and counts read every stream", async () => {
    const ks = { prefix: uniquePrefix('shards-advance') };
    const stream = new AdvanceStream(redis, ks, SHARDS);
    const streams = advanceStreams(ks, SHARDS);
    for (let s = 0; s < SHARDS; s++) await stream.publish({ type: 'kick', tenant: tenantOf(s), runId: `r${s}`, reason: 'test' });
    await stream.publish({ type: 'kick', tenant: tenantOf(1), runId: 'r9', reason: 'test' });
    expect(await Promise.all(streams.map((k) => redis.xlen(k.stream)))).toEqual([1, 2, 1]);
    expect(streams.map((k) => k.stream)).toEqual(queueShardPrefixes(ks, SHARDS).map((p) => `${p}:advance:events`));
    expect((await stream.backlog()).map((e) => (e.data as { runId: string }).runId).sort()).toEqual(['r0', 'r1', 'r2', 'r9']);
    expect((await stream.counts()).waiting).toBe(4);
    // One shard: the stream of before.
    expect(advanceStreams(ks, 1).map((k) => k.stream)).toEqual([`${queuePrefix(ks)}:advance:events`]);
  });

  it('the shard count is recorded by the first process; the same is accepted, another refused with both named', async () => {
    const ks = { prefix: uniquePrefix('shards-count') };
    await checkQueueShards(redis, ks, 3);
    expect(await redis.get(queueShardsKey(ks))).toBe('3');
    await checkQueueShards(redis, ks, 3);
    await expect(checkQueueShards(redis, ks, 1)).rejects.toThrow(`QUEUE_SHARDS=1 but the queues of prefix "${ks.prefix}" are set up with QUEUE_SHARDS=3 (key {${ks.prefix}:q}:shards)`);
    expect(await redis.get(queueShardsKey(ks))).toBe('3');
  });
});
