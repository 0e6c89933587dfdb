/**
 * Issue 11, the long campaign's `ledger_tenant` shortfall (seed 20261208: the tenant's spent waste
 * 3,600 nano-USD below the cost of its misses): a try of a missed speculation billed after the
 * miss's outcome was settled. A worker SIGSTOPped (or cut off) past its lock loses the job to
 * another worker, which starts a second try; the miss fences the attempt; the second try reports
 * first (FENCED: billed, `finishedAtMs` set), so the scheduler settles the outcome at that cost;
 * the first worker wakes up and reports its try, which is billed too (finishAttempt bills every
 * try once). The run's ledger took it; the tenant's did not. Real Redis, the real scripts and the
 * scheduler's outcome settler.
 */
import { ControlPlane, parseWorkflow, silentLogger } from '@gambit/shared';
import {
  createRun,
  createSpecAttempt,
  defineAttemptScripts,
  defineRunScripts,
  discardSpeculation,
  finishAttempt,
  initialNodeState,
  launchNode,
  parseNodes,
  reserveBudget,
  runKeys,
  settleBudget,
  startAttempt,
  tenantKeys,
} from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ControlPlaneAdapter } from '../../services/scheduler/src/engine/control.js';
import { settleOutcomes } from '../../services/scheduler/src/engine/outcomes.js';
import { loadRun } from '../../services/scheduler/src/engine/run-view.js';

const url = inject('redisUrl');
const redis = new Redis(url, { maxRetriesPerRequest: null });
defineRunScripts(redis);
defineAttemptScripts(redis);
const ks = { prefix: uniquePrefix('latebill') };
const cp = new ControlPlane(redis, ks, { nowMs: () => Date.now() }, silentLogger, { pollMs: 1000 });
afterAll(async () => {
  await cp.close();
  await redis.quit();
});

const llm = (id: string, prompt: string) => ({ id, kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt, expectedOutputTokens: 4, maxTokens: 8 });
const wf = parseWorkflow({ name: 'lb', nodes: [llm('a', 'route {{inputs.q}}'), llm('b', 'draft for {{nodes.a.output}}')], edges: [{ from: 'a', to: 'b', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } }] });
const usage = { inputTokens: 10, cachedInputTokens: 0, outputTokens: 5 };

async function budget(tenant: string): Promise<{ reserved: number; spent: number }> {
  const b = await redis.hgetall(tenantKeys(ks, tenant).budget);
  return { reserved: Number(b.reservedNanoUsd ?? 0), spent: Number(b.spentNanoUsd ?? 0) };
}

describe('a try billed after its miss was settled (issue 11 ledger_tenant)', () => {
  it('books the late try on the tenant once, whoever settles and however often', async () => {
    const tenant = 'lb';
    const runId = 'r1';
    const deps = { redis, ks, control: new ControlPlaneAdapter(cp, false), log: silentLogger };
    expect(await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflow: JSON.stringify(wf) }, nodes: { a: initialNodeState(), b: initialNodeState() }, planDecisions: [] })).toBe(true);
    const attempt = (id: string, nodeId: string, kind: 'authoritative' | 'speculative', assumed: Record<string, string>) =>
      JSON.stringify({ attemptId: id, nodeId, kind, epoch: 1, status: 'queued', assumed, costNanoUsd: 0, createdAtMs: 1, tries: 0 });
    expect((await launchNode(redis, ks, { tenant, runId, nodeId: 'a', expectedEpoch: 0, attemptId: 'a.a1', attemptJson: attempt('a.a1', 'a', 'authoritative', {}), jobId: 'j-a', intentJson: '{}', nowMs: 10 })).ok).toBe(true);
    // The speculation on b, with its reservation, as decisions.ts makes it.
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 9_000, limitNanoUsd: 1_000_000 })).toBe(true);
    const spec = await createSpecAttempt(redis, ks, {
      tenant,
      runId,
      nodeId: 'b',
      expectedEpoch: 0,
      claim: 'runtime',
      attemptId: 'b.s1',
      attemptJson: attempt('b.s1', 'b', 'speculative', { a: 'billing' }),
      jobId: 'j-b',
      intentJson: '{}',
      nowMs: 11,
      decisionJson: JSON.stringify({ decisionId: 'd1', posteriors: [] }),
      spec: { a: 'b.s1', d: 'd1', assumed: { a: 'billing' }, ok: {}, res: 9_000, cls: 'a=lb/lb/a->b', at: 11 },
    });
    expect(spec.ok).toBe(true);
    // Worker 1 starts try 1 and is stopped past its lock; worker 2 takes the stalled job: try 2.
    expect(await startAttempt(redis, ks, { tenant, runId, attemptId: 'b.s1', epoch: 1, workerId: 'w1', nowMs: 12 })).toMatchObject({ code: 'OK', tries: 1 });
    expect(await startAttempt(redis, ks, { tenant, runId, attemptId: 'b.s1', epoch: 1, workerId: 'w2', nowMs: 14 })).toMatchObject({ code: 'OK', tries: 2 });
    // a's real output is not the guess: the speculation misses and is fenced.
    expect(await discardSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: 'b.s1', kind: 'miss', edge: 'a', nowMs: 15 })).toMatchObject({ discarded: true });
    const fin = (tryNo: number, costNanoUsd: number, at: number) =>
      finishAttempt(redis, ks, { tenant, runId, attemptId: 'b.s1', epoch: 1, tryNo, outcome: 'aborted', output: '', usage, usageEstimated: false, costNanoUsd, finishedAtMs: at });
    // Try 2 stops on the cancel and reports first: billed, the attempt is finished.
    expect((await fin(2, 1_200, 16)).code).toBe('FENCED');
    const early = await loadRun(redis, ks, tenant, runId);
    if (early === undefined) throw new Error('run missing');
    expect(await settleOutcomes(deps, early, 17)).toBe(1);
    expect(await budget(tenant)).toEqual({ reserved: 0, spent: 1_200 });

    // Worker 1 wakes up and reports try 1: billed on the run (the money was spent) ...
    expect((await fin(1, 3_600, 20)).code).toBe('FENCED');
    const late = await loadRun(redis, ks, tenant, runId);
    if (late === undefined) throw new Error('run missing');
    expect(late.attempts.get('b.s1')?.costNanoUsd).toBe(4_800);
    expect(await redis.hget(runKeys(ks, tenant, runId).run, 'specCostNanoUsd')).toBe('4800');
    // ... and, on the reconcile its attempt_finished event triggers, on the tenant: the waste of
    // every closed non-hit speculation is its attempt's whole cost (the checker's ledger_tenant).
    await settleOutcomes(deps, late, 21);
    expect(await budget(tenant)).toEqual({ reserved: 0, spent: 4_800 });

    // Once: again, with the older read (a second scheduler that read before the late bill), and
    // with the newer one after that; the outcome itself is recorded once.
    await settleOutcomes(deps, late, 22);
    await settleOutcomes(deps, early, 23);
    const again = await loadRun(redis, ks, tenant, runId);
    if (again === undefined) throw new Error('run missing');
    expect(await settleOutcomes(deps, again, 24)).toBe(0);
    expect(await budget(tenant)).toEqual({ reserved: 0, spent: 4_800 });
    expect(parseNodes(await redis.hgetall(runKeys(ks, tenant, runId).nodes)).get('b')?.closed['b.s1']?.w).toBe(4_800);
    expect(await redis.llen(runKeys(ks, tenant, runId).outcomes)).toBe(1);
  });

  it('a settlement without a running total is never topped up (it is not known what it booked)', async () => {
    const tenant = 'lb2';
    const id = 'r9:b.s1';
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 500, limitNanoUsd: 10_000 })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant, runId: 'r9', settlementId: id, reservedNanoUsd: 500, wasteNanoUsd: 300 })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant, runId: 'r9', settlementId: id, reservedNanoUsd: 500, wasteNanoUsd: 900, runningTotal: true })).toBe(false);
    expect(await budget(tenant)).toEqual({ reserved: 0, spent: 300 });
    // A running total books up to the total, never down, and releases the reservation once.
    const id2 = 'r9:b.s2';
    expect(await reserveBudget(redis, ks, { tenant, amountNanoUsd: 500, limitNanoUsd: 10_000 })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant, runId: 'r9', settlementId: id2, reservedNanoUsd: 500, wasteNanoUsd: 200, runningTotal: true })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant, runId: 'r9', settlementId: id2, reservedNanoUsd: 500, wasteNanoUsd: 100, runningTotal: true })).toBe(false);
    expect(await settleBudget(redis, ks, { tenant, runId: 'r9', settlementId: id2, reservedNanoUsd: 500, wasteNanoUsd: 700, runningTotal: true })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant, runId: 'r9', settlementId: id2, reservedNanoUsd: 500, wasteNanoUsd: 700, runningTotal: true })).toBe(false);
    expect(await budget(tenant)).toEqual({ reserved: 0, spent: 1_000 });
  });
});
