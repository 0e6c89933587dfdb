/**
 * The recovery sweep against a real Redis and real BullMQ queues (docs/runtime.md): an intent a
 * scheduler wrote but never enqueued (it died in between) is enqueued by the sweep under its
 * deterministic job id, the stalled run gets a `kick`, and index entries of runs that were never
 * created are dropped.
 */
import { expandOpJob, ManualClock, OpJobSchema, parseWorkflow, silentLogger } from '@gambit/shared';
import { cancelRun, controlKeys, createRun, decodeAttempt, defineRunScripts, FairDispatcher, initialNodeState, launchNode, runKeys, settleEndedRun } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { planLaunch, renderOp } from '../../services/scheduler/src/engine/jobs.js';
import { Outbox } from '../../services/scheduler/src/engine/outbox.js';
import { RecoverySweeper } from '../../services/scheduler/src/recovery.js';
import { opQueues } from '../worker/helpers.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
defineRunScripts(redis);
const ks = { prefix: uniquePrefix('recovery') };
const queues = opQueues(redis, ks);
// Issue 10 item 4: the outbox enqueues for fair dispatch, which hands jobs to BullMQ for free worker slots.
const fair = new FairDispatcher(redis, ks, queues, silentLogger);
afterAll(async () => {
  await queues.close();
  await redis.quit();
});

const wf = parseWorkflow({
  name: 'w',
  nodes: [{ id: 'a', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'hi {{inputs.q}}', expectedOutputTokens: 1, maxTokens: 2 }],
});

describe('recovery sweep', () => {
  it('enqueues an orphaned outbox intent once, kicks the stalled run, drops runs never created', async () => {
    const clock = new ManualClock(1_000_000);
    const tenant = 't';
    const runId = 'r1';
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflow: JSON.stringify(wf) }, nodes: { a: initialNodeState() }, planDecisions: [] });
    const node = wf.nodes[0];
    if (node === undefined) throw new Error('no node');
    const plan = planLaunch({ tenant, runId, workflow: 'w', node, epoch: 1, kind: 'authoritative', op: renderOp(node, { runId, inputs: { q: 1 }, outputs: {} }), assumed: {}, streamPartials: false, nowMs: clock.nowMs() });
    const launched = await launchNode(redis, ks, {
      tenant,
      runId,
      nodeId: 'a',
      expectedEpoch: 0,
      attemptId: plan.attemptId,
      attemptJson: JSON.stringify(plan.attempt),
      jobId: plan.intent.jobId,
      intentJson: JSON.stringify(plan.intent),
      nowMs: clock.nowMs(),
    });
    expect(launched.ok).toBe(true);
    // The scheduler "died" here: the intent is written, the job never added.
    const active = controlKeys(ks).active;
    await redis.zadd(active, clock.nowMs(), `${tenant}:${runId}`);
    await redis.zadd(active, clock.nowMs() - 100_000, `${tenant}:ghost`);
    const outbox = new Outbox(redis, ks, fair, 3, silentLogger);
    const sweeper = new RecoverySweeper(redis, ks, outbox, queues.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
    // One worker slot registered (as a worker does at start), so a dispatched job reaches BullMQ.
    await fair.beat('recovery-test-worker', { ops: 1, spec: 0 });
    // Not stale yet: nothing happens to the live run.
    expect(await sweeper.sweep()).toBe(0);
    expect(await queues.ops.getJob(plan.intent.jobId)).toBeUndefined();
    clock.advance(6_000);
    expect(await sweeper.sweep()).toBe(1);
    const job = await queues.ops.getJob(plan.intent.jobId);
    // The enqueued payload is the intent's (issue 13 item 3: compact), and the worker reads the planned job from it.
    expect(job?.data).toEqual(plan.intent.data);
    expect(OpJobSchema.parse(expandOpJob(job?.data, { jobId: plan.intent.jobId, kind: 'authoritative' }))).toEqual(plan.job);
    expect(await redis.hlen(runKeys(ks, tenant, runId).intents)).toBe(0);
    expect((await queues.advance.backlog()).map((e) => e.data)).toEqual([{ type: 'kick', tenant, runId, reason: 'recovery' }]);
    expect(await redis.zscore(active, `${tenant}:ghost`)).toBeNull();
    // Swept once per stale period, and a repeated enqueue is idempotent (same job id).
    expect(await sweeper.sweep()).toBe(0);
    await outbox.send(tenant, runId, plan.intent);
    expect(await queues.ops.getJobCounts('waiting')).toEqual({ waiting: 1 });
    await sweeper.close();
  });

  it('issue 11 D5: the outbox of a run that ended is never sent; the ended pass discards it and settles the attempt', async () => {
    const clock = new ManualClock(2_000_000);
    const tenant = 't';
    const runId = 'r-ended';
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflow: JSON.stringify(wf) }, nodes: { a: initialNodeState() }, planDecisions: [] });
    const node = wf.nodes[0];
    if (node === undefined) throw new Error('no node');
    const plan = planLaunch({ tenant, runId, workflow: 'w', node, epoch: 1, kind: 'authoritative', op: renderOp(node, { runId, inputs: { q: 2 }, outputs: {} }), assumed: {}, streamPartials: false, nowMs: clock.nowMs() });
    const launched = await launchNode(redis, ks, {
      tenant,
      runId,
      nodeId: 'a',
      expectedEpoch: 0,
      attemptId: plan.attemptId,
      attemptJson: JSON.stringify(plan.attempt),
      jobId: plan.intent.jobId,
      intentJson: JSON.stringify(plan.intent),
      nowMs: clock.nowMs(),
    });
    expect(launched.ok).toBe(true);
    // The scheduler that wrote the intent died; the run then ended (here: cancelled by the API).
    expect((await cancelRun(redis, ks, { tenant, runId, status: 'cancelled', reason: 'test', nowMs: clock.nowMs() })).ended).toBe(true);
    const active = controlKeys(ks).active;
    await redis.zadd(active, clock.nowMs(), `${tenant}:${runId}`);
    const outbox = new Outbox(redis, ks, fair, 3, silentLogger);
    const sweeper = new RecoverySweeper(redis, ks, outbox, queues.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
    clock.advance(6_000);
    await sweeper.sweep();
    // Not enqueued: the run is kicked so its ended pass settles it.
    expect(await queues.ops.getJob(plan.intent.jobId)).toBeUndefined();
    // The ended pass (settleEndedRun, as RunEngine runs it) discards the outbox; the attempt was
    // fenced (and, never started, finished) by cancelRun: nothing waits for a worker.
    const r = await settleEndedRun(redis, ks, { tenant, runId, nowMs: clock.nowMs(), graceMs: 5_000 });
    expect(r).toEqual({ changed: 0, waiting: 0, intentsDiscarded: 1, fencedRunning: [] });
    expect(await redis.hlen(runKeys(ks, tenant, runId).intents)).toBe(0);
    const a = decodeAttempt((await redis.hget(runKeys(ks, tenant, runId).attempts, plan.attemptId)) ?? '{}', plan.attemptId);
    expect(a.status).toBe('cancelled');
    expect(a.finishedAtMs).toBeDefined();
    // Idempotent: nothing left to do.
    expect(await settleEndedRun(redis, ks, { tenant, runId, nowMs: clock.nowMs(), graceMs: 5_000 })).toEqual({ changed: 0, waiting: 0, intentsDiscarded: 0, fencedRunning: [] });
    await sweeper.close();
  });

  it('issue 11 D1: a fenced attempt that started is finished only after the grace period (its worker may still bill it)', async () => {
    const clock = new ManualClock(3_000_000);
    const tenant = 't';
    const runId = 'r-lost';
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflow: JSON.stringify(wf) }, nodes: { a: initialNodeState() }, planDecisions: [] });
    const k = runKeys(ks, tenant, runId);
    const started = { attemptId: 'a.s1', nodeId: 'a', kind: 'speculative', epoch: 1, status: 'running', assumed: {}, costNanoUsd: 0, createdAtMs: clock.nowMs(), startedAtMs: clock.nowMs(), tries: 1 };
    await redis.hset(k.attempts, 'a.s1', JSON.stringify(started));
    expect(await settleEndedRun(redis, ks, { tenant, runId, nowMs: clock.nowMs(), graceMs: 5_000 })).toBeUndefined();
    expect((await cancelRun(redis, ks, { tenant, runId, status: 'cancelled', reason: 'test', nowMs: clock.nowMs() })).ended).toBe(true);
    clock.advance(1_000);
    expect(await settleEndedRun(redis, ks, { tenant, runId, nowMs: clock.nowMs(), graceMs: 5_000 })).toEqual({ changed: 0, waiting: 1, intentsDiscarded: 0, fencedRunning: [] });
    clock.advance(5_000);
    expect(await settleEndedRun(redis, ks, { tenant, runId, nowMs: clock.nowMs(), graceMs: 5_000 })).toEqual({ changed: 1, waiting: 0, intentsDiscarded: 0, fencedRunning: [] });
    const a = decodeAttempt((await redis.hget(k.attempts, 'a.s1')) ?? '{}', 'a.s1');
    expect(a).toMatchObject({ status: 'cancelled', finishedAtMs: clock.nowMs(), usageEstimated: true });
  });
});

describe('put-off folds (issue 13 item 3)', () => {
  it('an ended run whose fold was put off is kicked once its time has come, then leaves the index', async () => {
    const ks2 = { prefix: uniquePrefix('recovery-fold') };
    const q2 = opQueues(redis, ks2);
    try {
      const clock = new ManualClock(1_000_000);
      const sweeper = new RecoverySweeper(redis, ks2, new Outbox(redis, ks2, new FairDispatcher(redis, ks2, q2, silentLogger), 3, silentLogger), q2.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
      const fold = controlKeys(ks2).fold;
      await redis.zadd(fold, 1_050_000, 't:later', 1_010_000, 't:due');
      expect(await sweeper.sweepFolds()).toBe(0);
      clock.advance(10_000);
      expect(await sweeper.sweepFolds()).toBe(1);
      expect((await q2.advance.backlog()).map((e) => e.data)).toEqual([{ type: 'kick', tenant: 't', runId: 'due', reason: 'recovery' }]);
      expect(await redis.zrange(fold, '0', '-1')).toEqual(['t:later']);
      await sweeper.close();
    } finally {
      await q2.close();
    }
  });
});
