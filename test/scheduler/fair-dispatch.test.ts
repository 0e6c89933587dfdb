/**
 * Issue 10 item 4: the fair dispatcher's scripts against a real redis-server and real BullMQ
 * queues: nothing is handed to BullMQ without a registered worker slot; tenants are served by
 * deficit round-robin with weights, a tenant under its share of the slots first; reserved slots go
 * to a tenant arriving (or running a second job) during another's flood; enqueue is idempotent;
 * a pump that died between its claim and its BullMQ add loses nothing (the sweep adds the job
 * under its id); a job whose BullMQ job is gone frees its slot.
 */
import { silentLogger } from '@gambit/shared';
import { callScript, type FairItem, FairDispatcher, fairKeys, type KeySpace } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { opQueues } from '../worker/helpers.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const opened: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(opened.map((q) => q.close()));
  await redis.quit();
});

function setup(label: string, reservedSlots = 0): { ks: KeySpace; fair: FairDispatcher; queues: ReturnType<typeof opQueues> } {
  const ks = { prefix: uniquePrefix(label) };
  const queues = opQueues(redis, ks);
  opened.push(queues);
  return { ks, queues, fair: new FairDispatcher(redis, ks, queues, silentLogger, { reservedSlots }) };
}

const item = (tenant: string, n: number): FairItem => ({
  lane: 'ops',
  tenant,
  jobId: `${tenant}~r${n}~x.a1`,
  name: 'x',
  data: { tenant, n },
  opts: { removeOnComplete: true },
});

/** Opens one slot at a time (release the previous job) and returns the tenants in dispatch order. */
async function order(fair: FairDispatcher, ks: KeySpace, n: number): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i++) {
    await fair.pump('ops');
    const out = await redis.zrange(fairKeys(ks, 'ops').out, '0', '-1');
    expect(out.length).toBe(1);
    const jobId = out[0] as string;
    got.push(jobId.split('~')[0] as string);
    await fair.release('ops', jobId);
  }
  return got;
}

describe('fair dispatch (issue 10 item 4)', () => {
  it('hands nothing to BullMQ without a registered worker slot; then only as many jobs as slots', async () => {
    const { ks, fair, queues } = setup('fair-slots');
    for (let i = 0; i < 5; i++) expect(await fair.enqueue(item('a', i), i)).toBe(true);
    expect(await fair.pump('ops')).toBe(0);
    expect(await queues.ops.getJobCounts('waiting')).toEqual({ waiting: 0 });
    await fair.beat('w1', { ops: 2, spec: 0 });
    expect(await fair.pump('ops')).toBe(2);
    expect(await queues.ops.getJobCounts('waiting')).toEqual({ waiting: 2 });
    // First come first served within the tenant.
    expect((await queues.ops.getWaiting()).map((j) => j.id).sort()).toEqual(['a~r0~x.a1', 'a~r1~x.a1']);
    expect(await fair.pump('ops')).toBe(0);
    expect(await fair.release('ops', 'a~r0~x.a1')).toBe(true);
    expect(await fair.release('ops', 'a~r0~x.a1')).toBe(false);
    expect(await fair.pump('ops')).toBe(1);
    expect(await redis.hget(fairKeys(ks, 'ops').inuse, 'a')).toBe('2');
    // A worker that leaves takes its slots away.
    await fair.leave('w1');
    await fair.release('ops', 'a~r1~x.a1');
    expect(await fair.pump('ops')).toBe(0);
  });

  it('serves tenants by deficit round-robin: a tenant that arrives behind a flood is next in turn', async () => {
    const { ks, fair } = setup('fair-drr');
    await fair.beat('w1', { ops: 1, spec: 0 });
    for (let i = 0; i < 6; i++) await fair.enqueue(item('a', i), i);
    for (let i = 0; i < 2; i++) await fair.enqueue(item('b', i), 100 + i);
    expect(await order(fair, ks, 8)).toEqual(['a', 'b', 'a', 'b', 'a', 'a', 'a', 'a']);
  });

  it('weights: a tenant of weight 3 gets three jobs per turn to one of a weight-1 tenant', async () => {
    const { ks, fair } = setup('fair-weight');
    await fair.beat('w1', { ops: 1, spec: 0 });
    await fair.setWeight('a', 3);
    for (let i = 0; i < 8; i++) await fair.enqueue(item('a', i), i);
    for (let i = 0; i < 4; i++) await fair.enqueue(item('b', i), i);
    expect(await order(fair, ks, 8)).toEqual(['a', 'a', 'a', 'b', 'a', 'a', 'a', 'b']);
    await fair.setWeight('b', 0.5);
    await fair.enqueue(item('b', 10), 10);
    // Weight 0.5: one job every second turn of b.
    expect(await order(fair, ks, 4)).toEqual(['a', 'a', 'b', 'b']);
  });

  it('reserved slots: a flooding tenant never takes the last reserved slot; a newcomer gets it at once', async () => {
    const { ks, fair } = setup('fair-reserve', 1);
    await fair.beat('w1', { ops: 3, spec: 0 });
    for (let i = 0; i < 10; i++) await fair.enqueue(item('a', i), i);
    expect(await fair.pump('ops')).toBe(2);
    expect(await fair.pump('ops')).toBe(0);
    await fair.enqueue(item('b', 0), 0);
    expect(await fair.pump('ops')).toBe(1);
    expect(await redis.hgetall(fairKeys(ks, 'ops').inuse)).toEqual({ a: '2', b: '1' });
    // A lone tenant still runs: with one slot it takes it (it holds fewer than the reserve).
    const lone = setup('fair-reserve-lone', 1);
    await lone.fair.beat('w1', { ops: 1, spec: 0 });
    await lone.fair.enqueue(item('c', 0), 0);
    expect(await lone.fair.pump('ops')).toBe(1);
  });

  it('a freed slot goes to a tenant under its share of the slots before a flood that is next in turn', async () => {
    const { ks, fair } = setup('fair-share');
    await fair.beat('w1', { ops: 4, spec: 0 });
    for (let i = 0; i < 10; i++) await fair.enqueue(item('a', i), i);
    expect(await fair.pump('ops')).toBe(4);
    for (let i = 0; i < 3; i++) await fair.enqueue(item('b', i), 100 + i);
    // a is next in turn each time; b (share 2 of 4) holds none, then one: b gets the freed slot.
    // At two each, a (holding 1 once its job ends) is the one under its share.
    const inuse = () => redis.hgetall(fairKeys(ks, 'ops').inuse);
    const after: Array<Record<string, string>> = [];
    for (let i = 0; i < 3; i++) {
      await fair.release('ops', `a~r${i}~x.a1`);
      expect(await fair.pump('ops')).toBe(1);
      after.push(await inuse());
    }
    expect(after).toEqual([
      { a: '3', b: '1' },
      { a: '2', b: '2' },
      { a: '2', b: '2' },
    ]);
    expect(await redis.zscore(fairKeys(ks, 'ops').out, 'a~r4~x.a1')).not.toBeNull();
  });

  it('reserved slots: a tenant already running one job gets a second from the reserve while another floods; two floods leave it free', async () => {
    const { ks, fair } = setup('fair-reserve-second', 1);
    await fair.beat('w1', { ops: 4, spec: 0 });
    for (let i = 0; i < 10; i++) await fair.enqueue(item('a', i), i);
    expect(await fair.pump('ops')).toBe(3);
    await fair.enqueue(item('b', 0), 0);
    await fair.enqueue(item('b', 1), 1);
    expect(await fair.pump('ops')).toBe(1);
    // One of a's jobs ends: the freed slot is the reserve again, and b (holding 1, below the
    // 4 / 3 it would get were a third tenant to arrive) takes it; a may not.
    await fair.release('ops', 'a~r0~x.a1');
    expect(await fair.pump('ops')).toBe(1);
    expect(await redis.hgetall(fairKeys(ks, 'ops').inuse)).toEqual({ a: '2', b: '2' });
    // Two floods on eight slots: seven taken, the reserve stays for a newcomer.
    const two = setup('fair-reserve-two', 1);
    await two.fair.beat('w1', { ops: 8, spec: 0 });
    for (let i = 0; i < 10; i++) {
      await two.fair.enqueue(item('a', i), i);
      await two.fair.enqueue(item('c', i), i);
    }
    expect(await two.fair.pump('ops')).toBe(7);
    await two.fair.enqueue(item('b', 0), 0);
    expect(await two.fair.pump('ops')).toBe(1);
    expect(await redis.hget(fairKeys(two.ks, 'ops').inuse, 'b')).toBe('1');
  });

  it('enqueue is idempotent by job id: ready, claimed or outstanding', async () => {
    const { fair } = setup('fair-idem');
    expect(await fair.enqueue(item('a', 0), 0)).toBe(true);
    expect(await fair.enqueue(item('a', 0), 0)).toBe(false);
    await fair.beat('w1', { ops: 1, spec: 0 });
    expect(await fair.pump('ops')).toBe(1);
    expect(await fair.enqueue(item('a', 0), 0)).toBe(false);
  });

  it('a pump that died after its claim loses nothing: the sweep adds the job under its id; a vanished job frees its slot', async () => {
    const { ks, fair, queues } = setup('fair-crash');
    await fair.beat('w1', { ops: 1, spec: 0 });
    await fair.enqueue(item('a', 0), 0);
    const k = fairKeys(ks, 'ops');
    // The claim as a pump runs it, then the process "dies" before its BullMQ add.
    const reply = await callScript<unknown[]>(redis, 'fairClaim-9.lua', [k.ring, k.deficit, k.weights, k.items, k.claimed, k.out, k.workers, k.owner, k.inuse], ['ops', 64, k.readyPrefix, 5_000, 0, 0]);
    expect(reply.length).toBe(3);
    expect(await queues.ops.getJob('a~r0~x.a1')).toBeUndefined();
    expect(await fair.sweep(60_000)).toEqual({ readded: 0, dropped: 0 });
    expect(await fair.sweep(0)).toEqual({ readded: 1, dropped: 0 });
    expect((await queues.ops.getJob('a~r0~x.a1'))?.data).toEqual({ tenant: 'a', n: 0 });
    expect(await redis.hlen(k.claimed)).toBe(0);
    // Still waiting in BullMQ: outstanding. Once the job is gone (here: removed), the slot is freed.
    expect(await fair.sweep(0)).toEqual({ readded: 0, dropped: 0 });
    await queues.ops.remove('a~r0~x.a1');
    expect(await fair.sweep(0)).toEqual({ readded: 0, dropped: 1 });
    expect(await redis.zcard(k.out)).toBe(0);
    expect(await redis.hlen(k.inuse)).toBe(0);
  });

  it('a cancelled job still on its ready list is removed and its tenant leaves the ring', async () => {
    const { ks, fair } = setup('fair-remove');
    await fair.enqueue(item('a', 0), 0);
    expect(await fair.remove('ops', 'a', 'a~r0~x.a1')).toBe(true);
    expect(await fair.remove('ops', 'a', 'a~r0~x.a1')).toBe(false);
    expect(await redis.llen(fairKeys(ks, 'ops').ring)).toBe(0);
    await fair.enqueue(item('a', 1), 1);
    expect(await redis.lrange(fairKeys(ks, 'ops').ring, 0, -1)).toEqual(['a']);
  });
});
