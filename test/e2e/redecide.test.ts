/**
 * M8 runtime re-decisions, end to end (scheduler and worker processes on the test Redis):
 * - a transient WAIT (`disabled` because a non-speculable in-edge is not done yet) does not use
 *   up the node's runtime decision: the gate is decided again, and speculated, once the
 *   non-speculable upstream has finished (parallel upstreams in both edge orders, and the
 *   validation-gated shape where the gate is first decided as a cascade);
 * - SPECULATE→cancel: a live speculation is re-decided when the run's dial changes, cancelled
 *   with a recorded WAIT, billed its fractional waste, and the node runs for real.
 */
import { countTokens, createPriceTable, llmCostUsd } from '@gambit/shared';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { llm, MODEL } from './workflows.js';

async function submit(url: string, body: Record<string, unknown>): Promise<string> {
  const r = await http(url, 'POST', '/v1/runs', body);
  if (r.status !== 201) throw new Error(`submit failed ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.runId as string;
}

const attemptsOf = (v: RunView, node: string): RunView[] => v.nodes[node].attempts as RunView[];
const decisionsOf = (v: RunView, node: string): RunView[] => v.decisions.filter((d: RunView) => d.node === node && d.phase === 'runtime');

describe('M8 runtime re-decisions (end to end)', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-redecide', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([
    ['speculable edge first', false],
    ['non-speculable edge first', true],
  ])('M8 a gate WAITs (disabled) while its non-speculable upstream runs, then speculates on the slow gate upstream (%s)', async (_label, reversed) => {
    const tenant = await eagerTenant(url, 'gate');
    const gateEdge = { from: 'slow', to: 'gate', type: 'validation_gate', predictor: { kind: 'fixed', value: 'pass' } };
    const plainEdge = { from: 'fast', to: 'gate', type: 'passthrough', speculate: false };
    const wf = {
      name: 'gatewf',
      nodes: [
        llm('fast', 'F {{inputs.q}}', { output: 'draft', ttftMs: 300 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm('slow', 'S {{inputs.q}}', { output: 'pass', ttftMs: 2500 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm('gate', 'Publish {{nodes.fast.output}} if {{nodes.slow.output}}', { output: 'published', ttftMs: 800 }, { expectedOutputTokens: 2, maxTokens: 8 }),
      ],
      edges: reversed ? [plainEdge, gateEdge] : [gateEdge, plainEdge],
    };
    const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'g' } }), 60_000);
    expect(v.status).toBe('succeeded');
    const decisions = decisionsOf(v, 'gate');
    // First decided while both upstreams run: the non-speculable edge makes it a transient WAIT.
    expect(decisions[0]).toMatchObject({ action: 'WAIT', reason: 'disabled' });
    expect(decisions[0].decisionId).not.toBe(`${v.runId}:gate:runtime`);
    const launched = decisions.find((d: RunView) => d.action === 'SPECULATE');
    expect(launched).toMatchObject({ reason: 'ev', decisionId: `${v.runId}:gate:runtime` });
    const spec = attemptsOf(v, 'gate').find((a) => a.kind === 'speculative');
    const fast = attemptsOf(v, 'fast')[0];
    const slow = attemptsOf(v, 'slow')[0];
    expect(spec.assumed).toEqual({ slow: 'pass' });
    // Launched once the non-speculable upstream was done, long before the slow gate upstream.
    expect(spec.createdAtMs).toBeGreaterThanOrEqual(fast.finishedAtMs);
    expect(spec.createdAtMs).toBeLessThan(slow.finishedAtMs - 1000);
    expect(v.nodes.gate.source).toBe('speculative');
    expect(v.nodes.gate.output).toBe('published');
  }, 90_000);

  it('M8 validation-gated shape: a cascade decision that came out disabled does not prevent the later launch on the gate', async () => {
    const tenant = await eagerTenant(url, 'vgate');
    const wf = {
      name: 'vgatewf',
      nodes: [
        // A templated output is not a known label, so generate's stream settles nothing early.
        llm('generate', 'Write {{inputs.q}}', { output: 'the real answer to {{inputs.q}}', ttftMs: 2000 }, { expectedOutputTokens: 4, maxTokens: 16 }),
        llm('check', 'Judge: {{nodes.generate.output}}', { output: 'pass', ttftMs: 200 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm('publish', 'Publish {{nodes.generate.output}} ({{nodes.check.output}})', { output: 'published', ttftMs: 1200 }, { expectedOutputTokens: 2, maxTokens: 8 }),
      ],
      edges: [
        // A free-text guess that misses: check's own speculation finishes early (a cascade source
        // for publish) and is thrown away when generate's real output arrives.
        { from: 'generate', to: 'check', type: 'free_text', predictor: { kind: 'fixed', value: 'some other answer' } },
        { from: 'check', to: 'publish', type: 'validation_gate', predictor: { kind: 'fixed', value: 'pass' } },
        { from: 'generate', to: 'publish', type: 'passthrough', speculate: false },
      ],
    };
    const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'v' } }), 60_000);
    expect(v.status).toBe('succeeded');
    const decisions = decisionsOf(v, "publish");
    expect(decisions[0]).toMatchObject({ action: 'WAIT', reason: 'disabled' });
    expect(decisions.some((d: RunView) => d.action === 'SPECULATE')).toBe(true);
    const checkAuth = attemptsOf(v, 'check').find((a) => a.kind === 'authoritative');
    const spec = attemptsOf(v, 'publish').find((a) => a.kind === 'speculative');
    expect(spec.assumed).toEqual({ check: 'pass' });
    // Launched while check ran authoritatively (after generate), on the gate's guess.
    expect(spec.createdAtMs).toBeLessThan(checkAuth.finishedAtMs);
    expect(v.nodes.publish.source).toBe('speculative');
  }, 90_000);

  it('M8 SPECULATE→cancel: turning the run dial to α = 0 mid-speculation cancels it, records the WAIT and bills its waste', async () => {
    // P = 1/2 (router, k = 2, a fresh class). C_fail ≤ C_spec, so with L = 1.5·C_spec:
    // EV = (L − C_fail)/2 ∈ [0.25, 0.75]·C_spec: ≥ 0 (SPECULATE at α = 1), < C_spec (WAIT at α = 0).
    const rates = createPriceTable().rates('simulated', MODEL);
    if (rates === undefined) throw new Error('no rates for the simulated model');
    const answerPrompt = 'Answer the billing question: {{inputs.q}}';
    const outTokens = 200;
    const cSpecUsd = llmCostUsd(rates, { inputTokens: countTokens(answerPrompt.replace('{{inputs.q}}', 'dial')), cachedInputTokens: 0, outputTokens: outTokens });
    const answerMs = 1500 + (1000 * outTokens) / 100;
    const lambdaUsdPerSec = (1.5 * cSpecUsd) / (answerMs / 1000);
    const tenant = await eagerTenant(url, 'redial', { alpha: 1, lambdaUsdPerSec });
    const wf = {
      name: 'redialwf',
      nodes: [
        llm('route', 'Classify: {{inputs.q}}', { output: 'billing', ttftMs: 4500 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm(
          'answer',
          answerPrompt.replace('billing', '{{nodes.route.output}}'),
          { output: Array.from({ length: 150 }, (_, i) => `w${i}`).join(' '), ttftMs: 1500, tokensPerSec: 100 },
          { expectedOutputTokens: outTokens, maxTokens: 400 },
        ),
      ],
      edges: [{ from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } }],
    };
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'dial' } });
    const running = await waitForView(url, tenant, id, (x) => attemptsOf(x, 'answer').some((a) => a.kind === 'speculative' && a.status === 'running'));
    expect(decisionsOf(running, 'answer')[0]).toMatchObject({ action: 'SPECULATE', alpha: 1 });
    expect(running.nodes.route.state).toBe('running');
    expect((await http(url, 'PUT', `/v1/runs/${tenant}/${id}/dial`, { alpha: 0 })).status).toBe(200);

    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    const spec = attemptsOf(v, 'answer').find((a) => a.kind === 'speculative');
    const route = attemptsOf(v, 'route')[0];
    expect(spec.status).toBe('cancelled');
    expect(spec.finishedAtMs).toBeLessThan(route.finishedAtMs);
    const cancel = decisionsOf(v, 'answer').find((d: RunView) => d.action === 'WAIT');
    expect(cancel).toMatchObject({ reason: 'below_threshold', alpha: 0, decisionId: `${id}:answer:cancel:${spec.attemptId}` });
    expect(cancel.evUsd).toBeGreaterThanOrEqual(0);
    expect(cancel.evUsd).toBeLessThan(cancel.thresholdUsd);
    // The node ran for real, after the router.
    expect(v.nodes.answer.source).toBe('authoritative');
    const auth = attemptsOf(v, 'answer').filter((a) => a.kind === 'authoritative');
    expect(auth).toHaveLength(1);
    expect(auth[0].createdAtMs).toBeGreaterThanOrEqual(route.finishedAtMs);
    // Fractional waste (M8): its input and what it streamed before the cancel, billed and booked.
    const settled = await waitForView(url, tenant, id, (x) => x.outcomes.some((o: RunView) => o.kind === 'cancelled'));
    const specAfter = attemptsOf(settled, 'answer').find((a) => a.kind === 'speculative');
    expect(specAfter.costNanoUsd).toBeGreaterThan(0);
    expect(specAfter.costNanoUsd).toBeLessThan(Math.ceil(cSpecUsd * 1e9));
    const outcome = settled.outcomes.find((o: RunView) => o.kind === 'cancelled');
    expect(outcome.decisionId).toBe(`${id}:answer:runtime`);
    expect(outcome.wasteUsd).toBeCloseTo(specAfter.costNanoUsd / 1e9, 12);
    expect(settled.dollars.wasted.nanoUsd).toBe(specAfter.costNanoUsd);
  }, 90_000);

  it('M8/M10 SPECULATE→cancel: lowering the tenant budget below a live reservation cancels it with a budget WAIT', async () => {
    const tenant = await eagerTenant(url, 'rebudget', { budgetUsd: 1 });
    const wf = {
      name: 'rebudgetwf',
      nodes: [
        llm('route', 'Classify: {{inputs.q}}', { output: 'billing', ttftMs: 3500 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm('answer', 'Answer the {{nodes.route.output}} question', { output: 'fine', ttftMs: 3000 }, { expectedOutputTokens: 4, maxTokens: 16 }),
      ],
      edges: [{ from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } }],
    };
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'b' } });
    await waitForView(url, tenant, id, (x) => attemptsOf(x, 'answer').some((a) => a.kind === 'speculative' && a.status === 'running'));
    expect((await http(url, 'PUT', `/v1/tenants/${tenant}/config`, { budgetUsd: 0 })).status).toBe(200);
    const cancelled = await waitForView(url, tenant, id, (x) => attemptsOf(x, 'answer').some((a) => a.kind === 'speculative' && a.status === 'cancelled'), 10_000);
    const route = attemptsOf(cancelled, 'route')[0];
    expect(route.finishedAtMs).toBeUndefined();
    const spec = attemptsOf(cancelled, 'answer').find((a) => a.kind === 'speculative');
    const cancel = decisionsOf(cancelled, 'answer').find((d: RunView) => d.action === 'WAIT');
    expect(cancel).toMatchObject({ reason: 'budget', decisionId: `${id}:answer:cancel:${spec.attemptId}` });
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    expect(v.nodes.answer.source).toBe('authoritative');
    // The reservation is released and the realized waste booked (M10).
    const settled = await waitForView(url, tenant, id, (x) => x.outcomes.some((o: RunView) => o.kind === 'cancelled'));
    const specAfter = attemptsOf(settled, 'answer').find((a) => a.kind === 'speculative');
    const cfg = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/config`);
    expect(cfg.body.budget).toEqual({ reservedNanoUsd: 0, spentNanoUsd: specAfter.costNanoUsd });
  }, 90_000);
});
