/**
 * M5 priors per tenant and class, changed at run time through the API (issue 9 item 7), end to
 * end (scheduler and worker processes, simulated provider): a free_text edge (default prior
 * Beta(1, 19), P = 0.05) waits below threshold at a realistic λ; after the tenant sets the class's
 * prior to Beta(19, 1) the next run's decision uses it (plus the evidence the class gathered) and
 * speculates. Invalid priors are refused naming the field and change nothing.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun } from './harness.js';
import { llm } from './workflows.js';

describe('M5 priors API (end to end)', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-priors', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const wf = {
    name: 'priorwf',
    nodes: [
      llm('draft', 'Draft {{inputs.q}}', { output: 'x', ttftMs: 2000 }, { expectedOutputTokens: 1, maxTokens: 4 }),
      { id: 'send', kind: 'tool', tool: 'echo', effects: 'none', priceUsd: 0.001, expectedDurationMs: 1000, args: { text: '{{nodes.draft.output}}' } },
    ],
    edges: [{ from: 'draft', to: 'send', type: 'free_text', predictor: { kind: 'fixed', value: 'x' } }],
  };

  async function runOnce(tenant: string, q: string): Promise<RunView> {
    const r = await http<RunView>(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q } });
    expect(r.status).toBe(201);
    const v = await waitForRun(url, tenant, r.body.runId as string, 60_000);
    expect(v.status).toBe('succeeded');
    return v.decisions.find((d: RunView) => d.phase === 'runtime' && d.node === 'send');
  }

  it('a class prior set at run time takes effect on the next decision (issue 9 item 7)', async () => {
    const tenant = await eagerTenant(url, 'priors', { alpha: 0.5, lambdaUsdPerSec: 0.01 });
    const before = await runOnce(tenant, 'a');
    expect(before).toMatchObject({ action: 'WAIT', reason: 'below_threshold' });
    expect(before.posteriors[0]).toMatchObject({ a: 1, b: 19 });

    const classId = `${tenant}/priorwf/draft->send`;
    const put = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/priors`, { classes: { [classId]: { a: 19, b: 1 } } });
    expect(put.status).toBe(200);
    expect(put.body.priors.classes[classId]).toEqual({ a: 19, b: 1 });
    const got = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/priors`);
    expect(got.body.priors).toEqual({ classes: { [classId]: { a: 19, b: 1 } } });
    expect(got.body.defaults.free_text).toEqual({ a: 1, b: 19 });

    // The tenant cache holds a read for up to 200 ms; the next run starts after it.
    await new Promise((res) => setTimeout(res, 300));
    const after = await runOnce(tenant, 'b');
    expect(after).toMatchObject({ action: 'SPECULATE', reason: 'ev' });
    // The new prior plus the evidence of the first run (its guess was scored: a hit).
    expect(after.posteriors[0].a).toBeGreaterThanOrEqual(19);
    expect(after.posteriors[0].b).toBeCloseTo(1, 9);
  }, 120_000);

  it('refuses an invalid prior naming the field, and keeps the stored priors', async () => {
    const tenant = await eagerTenant(url, 'priorsbad');
    const ok = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/priors`, { types: { lookup: { a: 3, b: 1 } } });
    expect(ok.status).toBe(200);
    const bad = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/priors`, { types: { lookup: { a: -1, b: 1 } } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.error)).toContain('lookup');
    const unknownType = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/priors`, { types: { telepathy: { a: 1, b: 1 } } });
    expect(unknownType.status).toBe(400);
    const got = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/priors`);
    expect(got.body.priors).toEqual({ types: { lookup: { a: 3, b: 1 } } });
  }, 60_000);
});
