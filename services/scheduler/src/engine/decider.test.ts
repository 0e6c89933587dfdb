/**
 * M2/M8/M10 live: the output tokens behind C_spec and C_fail come from the downstream's operation
 * class once the class has minSamples observations (issue 9: as ΔT uses learned durations), on a
 * real redis-server holding the class's learned distributions; below minSamples the node's
 * declared estimate stands.
 */
import { type ClassState, createPriceTable, llmCostUsd, operationClassOf, parseWorkflow, type WorkflowNode } from '@gambit/shared';
import { initialNodeState, type KeySpace, recordOperationSample } from '@gambit/shared/redis';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { PredictorSet } from '../predictors/index.js';
import { TenantStore } from '../tenants.js';
import type { SpeculationControl } from './control.js';
import { decideNode } from './decider.js';
import { OperationEstimateCache } from './op-estimates.js';
import { graphOf, type RunSnapshot } from './run-view.js';

const redis = new Redis(inject('redisUrl'));
afterAll(async () => {
  await redis.quit();
});

const wf = parseWorkflow({
  name: 'w',
  nodes: [
    { id: 'u', kind: 'llm', provider: 'openai', model: 'gpt-4o-mini', prompt: 'draft', expectedOutputTokens: 3000, maxTokens: 4000 },
    { id: 'd', kind: 'llm', provider: 'openai', model: 'gpt-4o-mini', prompt: 'answer as {{nodes.u.output}}', expectedOutputTokens: 20, maxTokens: 4000 },
  ],
  edges: [{ from: 'u', to: 'd', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } }],
});

class Online implements SpeculationControl {
  blocked(): undefined {
    return undefined;
  }
  async classState(): Promise<ClassState> {
    return { stage: 'online', a: 1, b: 1, a0: 1, b0: 1, hits: 0, misses: 0, n: 0, stageReason: '', stageVersion: 0, stageAtMs: 0, killedUntilMs: 0 };
  }
  async publishOutcome(): Promise<void> {}
  onKill(): void {}
}

function snapshot(nowMs: number): RunSnapshot {
  return {
    header: { tenant: 't', runId: 'r', workflowName: 'w', status: 'running', inputs: {}, alpha: undefined, lambdaUsdPerSec: undefined, speculation: true, createdAtMs: 0, finishedAtMs: undefined, reason: undefined, trace: undefined },
    workflow: wf,
    nodes: new Map([
      ['u', { ...initialNodeState(), state: 'running', epoch: 1, startedAtMs: nowMs - 100 }],
      ['d', initialNodeState()],
    ]),
    attempts: new Map(),
    graph: graphOf(wf),
  };
}

describe('C_spec and C_fail from the operation class’s learned output tokens (M2, M10)', () => {
  it('the declared estimate below minSamples, the class mean from minSamples on', async () => {
    const ks: KeySpace = { prefix: `decider-${process.pid}-${Math.random().toString(36).slice(2, 10)}` };
    let now = 1_000_000;
    const clock = { nowMs: () => now };
    const priceTable = createPriceTable();
    const opEstimates = new OperationEstimateCache(redis, ks, clock, { ttlMs: 1000, minSamples: 5 });
    const deps = { redis, ks, priceTable, predictors: new PredictorSet(), control: new Online(), opEstimates };
    const tenantCfg = await new TenantStore(redis, ks, { alpha: 1, lambdaUsdPerSec: 0.01, initialStage: 'online' }).get('t', now);
    const d = wf.nodes[1] as WorkflowNode;
    const decideD = async () => (await decideNode(deps, snapshot(now), d, { tenantCfg, phase: 'runtime', nowMs: now }))!.record;

    // Four observations of d's class, 900 output tokens each: not yet enough.
    for (let i = 0; i < 4; i++) await recordOperationSample(redis, ks, 't', operationClassOf(d), { durationMs: 9000, outputTokens: 900 });
    const declared = await decideD();
    now += 1001; // past the cache's TTL
    await recordOperationSample(redis, ks, 't', operationClassOf(d), { durationMs: 9000, outputTokens: 900 });
    const learned = await decideD();

    const rates = priceTable.rates('openai', 'gpt-4o-mini')!;
    const outUsd = (tokens: number) => llmCostUsd(rates, { inputTokens: 0, cachedInputTokens: 0, outputTokens: tokens });
    // C_spec differs by exactly the output tokens' price: 900 learned against 20 declared.
    expect(learned.cSpecUsd - declared.cSpecUsd).toBeCloseTo(outUsd(900) - outUsd(20), 12);
    // C_fail (the expected waste with streaming cancellation: u runs long enough for d to stream
    // its answer) grows with them too.
    expect(learned.cFailUsd).toBeGreaterThan(declared.cFailUsd * 2);
    expect(learned.cFailUsd).toBeLessThanOrEqual(learned.cSpecUsd);
  });
});
