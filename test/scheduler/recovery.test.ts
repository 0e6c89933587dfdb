/**
 * The recovery sweep against a real Redis and real BullMQ queues (docs/runtime.md): an intent a
 * scheduler wrote but never enqueued (it died in between) is enqueued by the sweep under its
 * deterministic job id, the stalled run gets a `kick`, and index entries of runs that were never
 * created are dropped.
 */
import { ManualClock, parseWorkflow, silentLogger } from '@gambit/shared';
import { controlKeys, createRun, defineRunScripts, initialNodeState, launchNode, runKeys } from '@gambit/shared/redis';
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
    const outbox = new Outbox(redis, ks, queues, 3, silentLogger);
    const sweeper = new RecoverySweeper(redis, ks, outbox, queues.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
    // Not stale yet: nothing happens to the live run.
    expect(await sweeper.sweep()).toBe(0);
    expect(await queues.ops.getJob(plan.intent.jobId)).toBeUndefined();
    clock.advance(6_000);
    expect(await sweeper.sweep()).toBe(1);
    const job = await queues.ops.getJob(plan.intent.jobId);
    expect(job?.data).toEqual(plan.job);
    expect(await redis.hlen(runKeys(ks, tenant, runId).intents)).toBe(0);
    expect((await queues.advance.backlog()).map((e) => e.data)).toEqual([{ type: 'kick', tenant, runId, reason: 'recovery' }]);
    expect(await redis.zscore(active, `${tenant}:ghost`)).toBeNull();
    // Swept once per stale period, and a repeated enqueue is idempotent (same job id).
    expect(await sweeper.sweep()).toBe(0);
    await outbox.send(tenant, runId, plan.intent);
    expect(await queues.ops.getJobCounts('waiting')).toEqual({ waiting: 1 });
    await sweeper.close();
  });
});
