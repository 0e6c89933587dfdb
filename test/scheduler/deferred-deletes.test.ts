/**
 * Issue 13 item 1, deletions that ride on a call made anyway, against a real redis-server and
 * real BullMQ queues:
 * - the fair dispatcher's confirmation of a claimed job added to BullMQ (its deletion from
 *   `claimed`) is carried by the process's next claim of the lane (fairClaim-9.lua 'confirm'),
 *   or sent by `flushConfirmed` (the timer, a stopping process, and the sweep first of all, so the
 *   sweep never takes a job this process added for one a dead pump left);
 * - an outbox intent the engine sent (`deferDelete`) is deleted by the run's next read
 *   (readRun-5.lua), or by `flushDeferred`.
 */
import { silentLogger } from '@gambit/shared';
import { callScript, type FairItem, FairDispatcher, fairKeys, type KeySpace, readRun, runKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { Intent } from '../../services/scheduler/src/engine/jobs.js';
import { Outbox } from '../../services/scheduler/src/engine/outbox.js';
import { opQueues } from '../worker/helpers.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const opened: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(opened.map((q) => q.close()));
  await redis.quit();
});

function setup(label: string): { ks: KeySpace; fair: FairDispatcher; queues: ReturnType<typeof opQueues> } {
  const ks = { prefix: uniquePrefix(label) };
  const queues = opQueues(redis, ks);
  opened.push(queues);
  return { ks, queues, fair: new FairDispatcher(redis, ks, queues, silentLogger) };
}

const item = (tenant: string, n: number): FairItem => ({
  lane: 'ops',
  tenant,
  jobId: `${tenant}~r${n}~x.a1`,
  name: 'x',
  data: { tenant, n },
  opts: { removeOnComplete: true },
});

describe('fair dispatch confirmations carried by the next claim', () => {
  it('a dispatched job stays claimed until the next claim of its lane carries its confirmation', async () => {
    const { ks, fair, queues } = setup('defer-confirm');
    const k = fairKeys(ks, 'ops');
    await fair.beat('w1', { ops: 4, spec: 0 });
    const first = await fair.enqueueAndClaim(item('a', 0), 0);
    expect(first.claimed.map((c) => c.jobId)).toEqual(['a~r0~x.a1']);
    expect(await fair.dispatch('ops', first.claimed)).toBe(1);
    expect((await queues.ops.getJob('a~r0~x.a1'))?.data).toEqual({ tenant: 'a', n: 0 });
    // Added to BullMQ; its confirmation waits.
    expect(await redis.hkeys(k.claimed)).toEqual(['a~r0~x.a1']);
    // The next claim (an enqueue of the lane) confirms it, and claims the new job.
    const second = await fair.enqueueAndClaim(item('a', 1), 1);
    expect(second.claimed.map((c) => c.jobId)).toEqual(['a~r1~x.a1']);
    expect(await redis.hkeys(k.claimed)).toEqual(['a~r1~x.a1']);
    await fair.dispatch('ops', second.claimed);
    // A release-and-pump claim carries it too.
    await fair.releaseAndPump('ops', 'a~r0~x.a1');
    expect(await redis.hlen(k.claimed)).toBe(0);
    expect(await redis.zrange(k.out, '0', '-1')).toEqual(['a~r1~x.a1']);
  });

  it('flushConfirmed sends what waits; the sweep confirms this process’s jobs first instead of adding them again', async () => {
    const { ks, fair, queues } = setup('defer-flush');
    const k = fairKeys(ks, 'ops');
    await fair.beat('w1', { ops: 4, spec: 0 });
    const r = await fair.enqueueAndClaim(item('b', 0), 0);
    await fair.dispatch('ops', r.claimed);
    expect(await redis.hlen(k.claimed)).toBe(1);
    // The job ran and was removed (removeOnComplete): a sweep that took it for a dead pump's
    // claim would add it again.
    await queues.ops.remove('b~r0~x.a1');
    expect(await fair.sweep(0)).toEqual({ readded: 0, dropped: 1 });
    expect(await queues.ops.getJob('b~r0~x.a1')).toBeUndefined();
    expect(await redis.hlen(k.claimed)).toBe(0);
    // flushConfirmed on its own.
    await fair.beat('w1', { ops: 4, spec: 0 });
    const r2 = await fair.enqueueAndClaim(item('b', 1), 1);
    await fair.dispatch('ops', r2.claimed);
    expect(await redis.hlen(k.claimed)).toBe(1);
    await fair.flushConfirmed();
    expect(await redis.hlen(k.claimed)).toBe(0);
  });

  it("fairClaim-9.lua deletes the 'confirm' ids in every mode and claims as without them", async () => {
    const { ks, fair } = setup('defer-modes');
    const k = fairKeys(ks, 'ops');
    const keys = [k.ring, k.deficit, k.weights, k.items, k.claimed, k.out, k.workers, k.owner, k.inuse];
    const base = ['ops', 64, k.readyPrefix, 5_000, 0, 0];
    await fair.beat('w1', { ops: 8, spec: 0 });
    await redis.hset(k.claimed, 'x1', '{}', 'x2', '{}', 'x3', '{}', 'x4', '{}');
    // No mode: the ids follow 'confirm' at ARGV[7].
    expect(await callScript<unknown[]>(redis, 'fairClaim-9.lua', keys, [...base, 'confirm', 'x1'])).toEqual([-1, -1]);
    expect((await redis.hkeys(k.claimed)).sort()).toEqual(['x2', 'x3', 'x4']);
    // enqueue: after its four arguments; the job is added and claimed as without them.
    const it0 = item('c', 0);
    const reply = await callScript<unknown[]>(redis, 'fairClaim-9.lua', keys, [...base, 'enqueue', it0.jobId, JSON.stringify(it0), 0, 'c', 'confirm', 'x2', 'x3']);
    expect(reply.slice(2)).toEqual([1, JSON.stringify(it0)]);
    expect((await redis.hkeys(k.claimed)).sort()).toEqual(['c~r0~x.a1', 'x4']);
    // release: after its job id; the job is released as without them.
    const rel = await callScript<unknown[]>(redis, 'fairClaim-9.lua', keys, [...base, 'release', it0.jobId, 'confirm', 'x4', 'c~r0~x.a1']);
    expect(rel).toEqual([-1, -1, 1]);
    expect(await redis.hlen(k.claimed)).toBe(0);
    expect(await redis.zcard(k.out)).toBe(0);
  });
});

describe('outbox intents deleted by the run’s next read', () => {
  const intent = (runId: string, jobId: string): Intent => ({ queue: 'ops', jobId, name: 'op', data: { runId }, createdAtMs: 1 });

  it('an intent sent with deferDelete stays until the run is read (or flushDeferred); a plain send deletes it at once', async () => {
    const { ks, fair } = setup('defer-intents');
    await fair.beat('w1', { ops: 8, spec: 0 });
    const outbox = new Outbox(redis, ks, fair, 3, silentLogger);
    const k = runKeys(ks, 't', 'r1');
    await redis.hset(k.run, 'status', 'running');
    await redis.hset(k.intents, 'j1', '{}', 'j2', '{}', 'j3', '{}');
    await outbox.send('t', 'r1', intent('r1', 'j1'), { deferDelete: true });
    await outbox.send('t', 'r1', intent('r1', 'j2'), { deferDelete: true });
    expect((await redis.hkeys(k.intents)).sort()).toEqual(['j1', 'j2', 'j3']);
    // The engine's read takes them: readRun deletes them before it reads.
    const sent = outbox.takeDeferred('t', 'r1');
    expect(sent).toEqual(['j1', 'j2']);
    expect(outbox.takeDeferred('t', 'r1')).toBeUndefined();
    await redis.hset(k.run, 'status', 'failed');
    expect((await readRun(redis, ks, { tenant: 't', runId: 'r1', deleteIntents: sent ?? [] })).intents).toBe(1);
    expect(await redis.hkeys(k.intents)).toEqual(['j3']);
    // flushDeferred (the timer; close) deletes what waits.
    await redis.hset(k.intents, 'j4', '{}');
    await outbox.send('t', 'r1', intent('r1', 'j4'), { deferDelete: true });
    expect((await redis.hkeys(k.intents)).sort()).toEqual(['j3', 'j4']);
    await outbox.flushDeferred();
    expect(await redis.hkeys(k.intents)).toEqual(['j3']);
    // Without deferDelete (the sweep's flush): deleted with the send.
    await outbox.send('t', 'r1', intent('r1', 'j3'));
    expect(await redis.hlen(k.intents)).toBe(0);
    await outbox.close();
  });
});
