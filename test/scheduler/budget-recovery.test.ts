/**
 * M10: a budget reservation left open by a scheduler that died between reserving and launching
 * is released by the recovery sweep after a grace period (real Redis, real BullMQ queues). The
 * sweep tells an unlaunched reservation from a launched one by the attempt id in the run state;
 * it settles under the reservation's own id, so the scheduler's late release and a repeated
 * sweep count nothing twice.
 */
import { ManualClock, parseWorkflow, silentLogger } from '@gambit/shared';
import { closeReservation, controlKeys, createRun, createSpecAttempt, defineRunScripts, FairDispatcher, initialNodeState, launchNode, reserveBudget, settleBudget, tenantKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { planLaunch, renderOp } from '../../services/scheduler/src/engine/jobs.js';
import { Outbox } from '../../services/scheduler/src/engine/outbox.js';
import { RecoverySweeper } from '../../services/scheduler/src/recovery.js';
import { opQueues } from '../worker/helpers.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
defineRunScripts(redis);
const ks = { prefix: uniquePrefix('budgetrec') };
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

async function budgetOf(tenant: string): Promise<Record<string, string>> {
  return redis.hgetall(tenantKeys(ks, tenant).budget);
}

/** A run's budget settlement markers (settleBudget-2.lua): settlement id -> booked. */
async function settledOf(tenant: string, runId: string): Promise<Record<string, string>> {
  return redis.hgetall(tenantKeys(ks, tenant).settled(runId));
}

describe('M10 recovery of open budget reservations', () => {
  it('releases a reservation whose launch never happened, once, and keeps one whose launch is visible', async () => {
    const clock = new ManualClock(2_000_000);
    const tenant = 'bt';
    const runId = 'r1';
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflow: JSON.stringify(wf) }, nodes: { a: initialNodeState() }, planDecisions: [] });
    const node = wf.nodes[0];
    if (node === undefined) throw new Error('no node');
    const plan = planLaunch({ tenant, runId, workflow: 'w', node, epoch: 1, kind: 'authoritative', op: renderOp(node, { runId, inputs: { q: 1 }, outputs: {} }), assumed: {}, streamPartials: false, nowMs: clock.nowMs() });
    const launchedId = `${runId}:${plan.attemptId}:unused:x1`;
    const orphanId = `${runId}:a.s9:unused:x2`;
    // Both reserved; the first one's launch happens (the scheduler dies before closing its
    // record), the second one's scheduler dies before launching.
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 300, limitNanoUsd: 1_000, open: { id: launchedId, runId, attemptId: plan.attemptId, atMs: clock.nowMs() } })).toBe(true);
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 500, limitNanoUsd: 1_000, open: { id: orphanId, runId, attemptId: 'a.s9', atMs: clock.nowMs() } })).toBe(true);
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
    // The budget is full: a third launch cannot be covered while the orphan holds its share.
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 400, limitNanoUsd: 1_000 })).toBe(false);
    expect(Number(await redis.zscore(controlKeys(ks).reservations, tenant))).toBe(clock.nowMs());

    const outbox = new Outbox(redis, ks, fair, 3, silentLogger);
    const sweeper = new RecoverySweeper(redis, ks, outbox, queues.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
    // Within the grace period nothing is touched (the scheduler may still be launching).
    expect(await sweeper.sweepReservations()).toBe(0);
    expect(await budgetOf(tenant)).toMatchObject({ reservedNanoUsd: '800' });
    clock.advance(6_000);
    expect(await sweeper.sweepReservations()).toBe(1);
    const after = await budgetOf(tenant);
    // The orphan is released with no waste; the launched one stays reserved for its outcome.
    expect(after).toMatchObject({ reservedNanoUsd: '300' });
    expect(await settledOf(tenant, runId)).toMatchObject({ [orphanId]: '-' });
    expect(after.spentNanoUsd ?? '0').toBe('0');
    expect(Object.keys(after).filter((f) => f.startsWith('open:'))).toEqual([]);
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 400, limitNanoUsd: 1_000 })).toBe(true);
    // Idempotent: a second sweep, and the dead scheduler's own late release, settle nothing again.
    clock.advance(60_000);
    expect(await sweeper.sweepReservations()).toBe(0);
    expect(await settleBudget(redis, ks, { tenant, runId, settlementId: orphanId, reservedNanoUsd: 500, wasteNanoUsd: 0 })).toBe(false);
    expect(await budgetOf(tenant)).toMatchObject({ reservedNanoUsd: '700' });
    await sweeper.close();
  });

  it('a stalled scheduler that launches after the sweep released its reservation takes it again', async () => {
    const clock = new ManualClock(3_000_000);
    const tenant = 'bt2';
    const id = 'r2:a.s1:unused:y';
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 250, limitNanoUsd: 1_000, open: { id, runId: 'r2', attemptId: 'a.s1', atMs: clock.nowMs() } })).toBe(true);
    const sweeper = new RecoverySweeper(redis, ks, new Outbox(redis, ks, fair, 3, silentLogger), queues.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
    clock.advance(6_000);
    expect(await sweeper.sweepReservations()).toBe(1);
    expect(await budgetOf(tenant)).toMatchObject({ reservedNanoUsd: '0' });
    // Its launch succeeded after all: the launch's outcome will release 250, so it is held again.
    await closeReservation(redis, ks, { tenant, runId: 'r2', id, amountNanoUsd: 250 });
    expect(await budgetOf(tenant)).toMatchObject({ reservedNanoUsd: '250' });
    // A normal close (not swept) leaves the reservation as it is and the record closed.
    const id2 = 'r2:a.s2:unused:z';
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 100, limitNanoUsd: 1_000, open: { id: id2, runId: 'r2', attemptId: 'a.s2', atMs: clock.nowMs() } })).toBe(true);
    await closeReservation(redis, ks, { tenant, runId: 'r2', id: id2, amountNanoUsd: 100 });
    const b = await budgetOf(tenant);
    expect(b).toMatchObject({ reservedNanoUsd: '350' });
    expect(Object.keys(b).filter((f) => f.startsWith('open:'))).toEqual([]);
    await sweeper.close();
  });
  // The chaos campaign's ledger_tenant leak (reservedNanoUsd > 0 with no `open:*` left): two
  // schedulers decide the same node at the same epoch, so both reserve for attempt id `a.s1`;
  // one launches, the other loses the race and is killed before releasing its reservation. The
  // sweep used to take the winner's attempt for the loser's launch and drop the loser's record
  // unreleased.
  it('releases the reservation of a race loser that died, though the winner launched the same attempt id', async () => {
    const clock = new ManualClock(4_000_000);
    const tenant = 'bt3';
    const runId = 'r3';
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflow: JSON.stringify(wf) }, nodes: { a: initialNodeState() }, planDecisions: [] });
    const node = wf.nodes[0];
    if (node === undefined) throw new Error('no node');
    const winnerId = `${runId}:a.s1:unused:w`;
    const loserId = `${runId}:a.s1:unused:l`;
    for (const [id, amt] of [
      [winnerId, 200],
      [loserId, 300],
    ] as const)
      expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: amt, limitNanoUsd: 1_000, open: { id, runId, attemptId: 'a.s1', atMs: clock.nowMs() } })).toBe(true);
    const plan = planLaunch({ tenant, runId, workflow: 'w', node, epoch: 1, kind: 'speculative', op: renderOp(node, { runId, inputs: { q: 1 }, outputs: {} }), assumed: {}, decisionId: 'd1', streamPartials: false, reservationId: winnerId, nowMs: clock.nowMs() });
    expect(plan.attemptId).toBe('a.s1');
    const r = await createSpecAttempt(redis, ks, {
      tenant,
      runId,
      nodeId: 'a',
      expectedEpoch: 0,
      claim: 'runtime',
      attemptId: plan.attemptId,
      attemptJson: JSON.stringify(plan.attempt),
      jobId: plan.intent.jobId,
      intentJson: JSON.stringify(plan.intent),
      nowMs: clock.nowMs(),
      decisionJson: JSON.stringify({ decisionId: 'd1' }),
      spec: { a: plan.attemptId, d: 'd1', assumed: {}, ok: {}, res: 200, cls: '', at: clock.nowMs() },
    });
    expect(r.ok).toBe(true);
    // The winner dies before closing its record; the loser dies before releasing its reservation.
    const sweeper = new RecoverySweeper(redis, ks, new Outbox(redis, ks, fair, 3, silentLogger), queues.advance, clock, silentLogger, { intervalMs: 1_000, staleMs: 5_000 });
    clock.advance(6_000);
    expect(await sweeper.sweepReservations()).toBe(1);
    const b = await budgetOf(tenant);
    // The loser's 300 is released; the winner's 200 stays reserved for its outcome's settlement.
    expect(b).toMatchObject({ reservedNanoUsd: '200' });
    const marks = await settledOf(tenant, runId);
    expect(marks).toMatchObject({ [loserId]: '-' });
    expect(marks[winnerId]).toBeUndefined();
    expect(Object.keys(b).filter((f) => f.startsWith('open:'))).toEqual([]);
    // The winner's outcome releases its own 200 under `<run>:<attempt>`: the tenant ends at 0.
    expect(await settleBudget(redis, ks, { tenant, runId, settlementId: `${runId}:a.s1`, reservedNanoUsd: 200, wasteNanoUsd: 0 })).toBe(true);
    expect(await budgetOf(tenant)).toMatchObject({ reservedNanoUsd: '0' });
    await sweeper.close();
  });

  // The campaign's earlier -3600 (a double release): the sweep found no attempt, the stalled
  // scheduler then launched and closed its record, and the sweep released it anyway; the outcome
  // released it again. The sweep's release is conditional on the record still being open.
  it("the sweep's release settles nothing once the launch closed the record", async () => {
    const tenant = 'bt4';
    const id = 'r4:a.s1:unused:v';
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 150, limitNanoUsd: 1_000, open: { id, runId: 'r4', attemptId: 'a.s1', atMs: 1 } })).toBe(true);
    await closeReservation(redis, ks, { tenant, runId: 'r4', id, amountNanoUsd: 150 });
    expect(await settleBudget(redis, ks, { tenant, runId: 'r4', settlementId: id, reservedNanoUsd: 150, wasteNanoUsd: 0, onlyIfOpen: true })).toBe(false);
    const b = await budgetOf(tenant);
    expect(b).toMatchObject({ reservedNanoUsd: '150' });
    expect((await settledOf(tenant, 'r4'))[id]).toBeUndefined();
    // The outcome settles it once.
    expect(await settleBudget(redis, ks, { tenant, runId: 'r4', settlementId: 'r4:a.s1', reservedNanoUsd: 150, wasteNanoUsd: 0 })).toBe(true);
    expect(await budgetOf(tenant)).toMatchObject({ reservedNanoUsd: '0' });
  });
});
