import { type ClassState, createPriceTable, parseWorkflow } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import type { TenantConfig } from '../tenants.js';
import type { SpeculationControl } from './control.js';
import { planDecisions } from './plan.js';

/** A control plane with fixed answers: every class at `stage`, nothing killed, priors as posteriors. */
function staticControl(stage: 'shadow' | 'canary' | 'online', killed = false): SpeculationControl {
  return {
    blocked: () => (killed ? 'kill' : undefined),
    async classState(_id, init): Promise<ClassState> {
      const { a, b } = init.prior;
      return { stage, a, b, a0: a, b0: b, hits: 0, misses: 0, n: 0, stageReason: 'test', stageVersion: 1, stageAtMs: 0, killedUntilMs: 0 };
    },
    async publishOutcome() {},
    onKill() {},
  };
}

const cfg = (over: Partial<TenantConfig> = {}): TenantConfig => ({
  alpha: 0.5,
  lambdaUsdPerSec: 0.1,
  budgetNanoUsd: undefined,
  posteriorMode: { kind: 'mean' },
  allowDisclosure: false,
  initialStage: 'online',
  calibration: {},
  priors: {},
  keepOutputs: false,
  retentionSec: undefined,
  ...over,
});

function router(k: number) {
  return parseWorkflow({
    name: 'r',
    nodes: [
      { id: 'route', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'Route {{inputs.q}}', expectedOutputTokens: 3, maxTokens: 8 },
      { id: 'big', kind: 'llm', provider: 'simulated', model: 'gpt-4o', prompt: `Answer as {{nodes.route.output}}: ${'context '.repeat(400)}`, expectedOutputTokens: 400, maxTokens: 800 },
      { id: 'pay', kind: 'tool', tool: 'charge_card', args: { n: '{{nodes.route.output}}' } },
    ],
    edges: [
      { from: 'route', to: 'big', type: 'router_k_way', k },
      { from: 'route', to: 'pay', type: 'router_k_way', k },
    ],
  });
}

const base = { tenant: 't', runId: 'r1', speculation: true, priceTable: createPriceTable(), nowMs: 1 };

describe('plan phase (M8) over the one rule (M4)', () => {
  it('marks each node with upstreams, never evaluates an irreversible one, and records why', async () => {
    const recs = await planDecisions({ ...base, workflow: router(2), tenantCfg: cfg(), control: staticControl('online') });
    expect(recs.map((r) => r.node)).toEqual(['big', 'pay']);
    const pay = recs.find((r) => r.node === 'pay');
    expect(pay).toMatchObject({ phase: 'plan', action: 'WAIT', reason: 'inadmissible', cSpecUsd: 0 });
    const big = recs.find((r) => r.node === 'big');
    expect(big?.cSpecUsd).toBeGreaterThan(0);
    expect(big?.cFailUsd).toBeLessThanOrEqual(big?.cSpecUsd ?? 0);
    expect(big?.p).toBeCloseTo(0.5, 10);
    expect(big?.edgeClasses).toEqual(['t/r/route->big']);
  });

  it('M5 self-limit: as the router has more routes (P = 1/k) the plan stops speculating, with no cap on k', async () => {
    const actions: Record<number, string> = {};
    for (const k of [2, 3, 5, 10, 50, 500]) {
      const [big] = await planDecisions({ ...base, workflow: router(k), tenantCfg: cfg(), control: staticControl('online') });
      actions[k] = `${big?.action}`;
    }
    expect(actions[2]).toBe('SPECULATE');
    expect(actions[500]).toBe('WAIT');
    const ks = [2, 3, 5, 10, 50, 500];
    const firstWait = ks.findIndex((k) => actions[k] === 'WAIT');
    expect(ks.slice(firstWait).every((k) => actions[k] === 'WAIT')).toBe(true);
  });

  it('speculation off, kill-switch and shadow stage each WAIT with their own reason', async () => {
    const off = await planDecisions({ ...base, speculation: false, workflow: router(2), tenantCfg: cfg(), control: staticControl('online') });
    expect(off.every((r) => r.reason === 'disabled')).toBe(true);
    const [killed] = await planDecisions({ ...base, workflow: router(2), tenantCfg: cfg(), control: staticControl('online', true) });
    expect(killed?.reason).toBe('killed');
    const [shadow] = await planDecisions({ ...base, workflow: router(2), tenantCfg: cfg(), control: staticControl('shadow') });
    expect(shadow).toMatchObject({ action: 'WAIT', reason: 'stage', stage: 'shadow' });
  });

  it('M3: α moves the threshold of the same decision', async () => {
    const [lo] = await planDecisions({ ...base, alpha: 0, workflow: router(3), tenantCfg: cfg(), control: staticControl('online') });
    const [hi] = await planDecisions({ ...base, alpha: 1, workflow: router(3), tenantCfg: cfg(), control: staticControl('online') });
    expect(lo?.thresholdUsd).toBeCloseTo(lo?.cSpecUsd ?? 0, 12);
    expect(hi?.thresholdUsd).toBe(0);
    expect(hi?.evUsd).toBeCloseTo(lo?.evUsd ?? 0, 12);
  });

  it('M6 disclosure follows the tenant policy; M5 a lower credible bound gives a lower P than the mean', async () => {
    const wf = parseWorkflow({
      name: 'd',
      nodes: [
        { id: 'u', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'u', expectedOutputTokens: 2, maxTokens: 4 },
        { id: 'get', kind: 'tool', tool: 'http_get', effects: 'none', discloses: true, args: { url: 'https://example.test/{{nodes.u.output}}' } },
      ],
      edges: [{ from: 'u', to: 'get', type: 'lookup' }],
    });
    const [deny] = await planDecisions({ ...base, workflow: wf, tenantCfg: cfg(), control: staticControl('online') });
    expect(deny).toMatchObject({ action: 'WAIT', reason: 'inadmissible' });
    const [allow] = await planDecisions({ ...base, workflow: wf, tenantCfg: cfg({ allowDisclosure: true }), control: staticControl('online') });
    expect(allow?.reason).not.toBe('inadmissible');
    const [mean] = await planDecisions({ ...base, workflow: router(3), tenantCfg: cfg(), control: staticControl('online') });
    const [lcb] = await planDecisions({ ...base, workflow: router(3), tenantCfg: cfg({ posteriorMode: { kind: 'lower_bound', quantile: 0.1 } }), control: staticControl('online') });
    expect(lcb?.p).toBeLessThan(mean?.p ?? 0);
    expect(lcb?.posteriors[0]).toMatchObject({ mode: 'lcb', quantile: 0.1 });
  });
});
