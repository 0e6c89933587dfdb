/**
 * M8 SPECULATE→cancel (redecide.ts) on a real redis-server: a live speculation is re-decided with
 * the current posterior of its edge class; while the rule still says SPECULATE nothing happens,
 * once the posterior has fallen far enough the WAIT is recorded once and the speculation discarded,
 * and a recorded cancel whose discard did not happen is finished on the next pass.
 */
import { type ClassState, type DecisionRecord, parseWorkflow, silentLogger, systemClock } from '@gambit/shared';
import { createRun, decodeDecision, defineRunScripts, initialNodeState, type KeySpace, type NodeState, runKeys } from '@gambit/shared/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { TenantStore } from '../tenants.js';
import type { SpeculationControl } from './control.js';
import { cancelClaim, Redecider } from './redecide.js';
import { graphOf, type RunSnapshot } from './run-view.js';

const redis = new Redis(inject('redisUrl'));
defineRunScripts(redis);
afterAll(async () => {
  await redis.quit();
});

const wf = parseWorkflow({
  name: 'w',
  nodes: [
    { id: 'u', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'p', expectedOutputTokens: 1, maxTokens: 2 },
    { id: 'd', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: '{{nodes.u.output}}', expectedOutputTokens: 1, maxTokens: 2 },
  ],
  edges: [{ from: 'u', to: 'd', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'x' } }],
});
const CLASS = 't/w/u->d';

/** The control plane's class state, held in memory (the engine reads only `classState`). */
class Classes implements SpeculationControl {
  posterior = { a: 1, b: 1 };
  blocked(): undefined {
    return undefined;
  }
  async classState(): Promise<ClassState> {
    return { stage: 'online', a: this.posterior.a, b: this.posterior.b, a0: 1, b0: 1, hits: 0, misses: 0, n: 0, stageReason: '', stageVersion: 0, stageAtMs: 0, killedUntilMs: 0 };
  }
  async publishOutcome(): Promise<void> {}
  onKill(): void {}
}

let ks: KeySpace;
let runId: string;
let classes: Classes;
let redecider: Redecider;
const discarded: string[] = [];
const discard = async (_s: RunSnapshot, nodeId: string, attemptId: string) => {
  discarded.push(`${nodeId}/${attemptId}`);
  return true;
};

// P = 1/2, C_spec = C_fail = $1, ΔT = 1 s, λ = $1.5/s, α = 1: EV = 0.75 − 0.5 = $0.25 ≥ 0.
const speculate: DecisionRecord = {
  decisionId: 'r:d:runtime',
  phase: 'runtime',
  tenant: 't',
  workflow: 'w',
  runId: 'r',
  node: 'd',
  edgeClasses: [CLASS],
  action: 'SPECULATE',
  reason: 'ev',
  p: 0.5,
  cSpecUsd: 1,
  cFailUsd: 1,
  deltaTSec: 1,
  lUsd: 1.5,
  evUsd: 0.25,
  thresholdUsd: 0,
  alpha: 1,
  lambdaUsdPerSec: 1.5,
  stage: 'online',
  posteriors: [{ a: 1, b: 1, mode: 'mean' }],
  predictorUsd: 0,
  atMs: 0,
};

function snapshot(claims: Record<string, number> = {}): RunSnapshot {
  const d: NodeState = {
    ...initialNodeState(),
    epoch: 1,
    claims: { runtime: 1, ...claims },
    spec: { a: 'd.s1', d: speculate.decisionId, assumed: { u: 'x' }, ok: {}, res: 100, cls: `u=${CLASS}`, at: 0 },
  };
  return {
    header: { tenant: 't', runId, workflowName: 'w', status: 'running', inputs: {}, alpha: undefined, lambdaUsdPerSec: undefined, speculation: true, createdAtMs: 0, finishedAtMs: undefined, reason: undefined, trace: undefined },
    workflow: wf,
    nodes: new Map([
      ['u', { ...initialNodeState(), state: 'running', epoch: 1, auth: 'u.a1' }],
      ['d', d],
    ]),
    attempts: new Map([['d.s1', { attemptId: 'd.s1', nodeId: 'd', kind: 'speculative', epoch: 1, status: 'running', assumed: { u: 'x' }, costNanoUsd: 0, createdAtMs: 0, tries: 1 }]]),
    graph: graphOf(wf),
  };
}

beforeEach(async () => {
  // Own key prefix per test (the test Redis is shared; nothing is flushed).
  ks = { prefix: `redecide-${process.pid}-${Math.random().toString(36).slice(2, 10)}` };
  runId = `r${Math.random().toString(36).slice(2, 8)}`;
  discarded.length = 0;
  classes = new Classes();
  const tenants = new TenantStore(redis, ks, { alpha: 1, lambdaUsdPerSec: 1.5, initialStage: 'online' });
  redecider = new Redecider({ redis, ks, control: classes, tenants, clock: systemClock, log: silentLogger });
  const s = snapshot();
  await createRun(redis, ks, { tenant: 't', runId, header: { status: 'running', workflow: '{}' }, nodes: Object.fromEntries(s.nodes), planDecisions: [speculate] });
});

async function decisions(): Promise<DecisionRecord[]> {
  const s = snapshot();
  const ctx = { tenant: s.header.tenant, workflow: s.workflow.name, runId: s.header.runId, createdAtMs: s.header.createdAtMs };
  return (await redis.lrange(runKeys(ks, 't', runId).decisions, 0, -1)).map((j) => decodeDecision(j, ctx));
}

describe('M8 SPECULATE→cancel re-decision', () => {
  it('keeps a speculation the rule still accepts, cancels it once the posterior has fallen', async () => {
    expect(await redecider.run(snapshot(), discard)).toBe(false);
    // A small dip that still passes (P = 0.45: EV = 0.675 − 0.55 > 0).
    classes.posterior = { a: 9, b: 11 };
    expect(await redecider.run(snapshot(), discard)).toBe(false);
    expect(discarded).toEqual([]);
    classes.posterior = { a: 1, b: 9 };
    expect(await redecider.run(snapshot(), discard)).toBe(true);
    expect(discarded).toEqual(['d/d.s1']);
    const cancel = (await decisions()).find((r) => r.decisionId === `${runId}:d:${cancelClaim('d.s1')}`);
    expect(cancel).toMatchObject({ phase: 'runtime', action: 'WAIT', reason: 'below_threshold', posteriors: [{ a: 1, b: 9, mode: 'mean' }] });
    expect(cancel?.p).toBeCloseTo(0.1, 12);
    expect(cancel?.evUsd).toBeLessThan(0);
  });

  it('a cancel recorded by a scheduler that died before discarding is finished without deciding again', async () => {
    expect(await redecider.run(snapshot({ [cancelClaim('d.s1')]: 1 }), discard)).toBe(true);
    expect(discarded).toEqual(['d/d.s1']);
    expect((await decisions()).filter((r) => r.action === 'WAIT')).toEqual([]);
  });
});
