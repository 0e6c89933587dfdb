/**
 * M10 `llm` predictor and the two-stage guess purchase, end to end (scheduler and worker
 * processes, simulated provider): the guess is a speculative-queue job bought after the
 * upstream's authoritative launch (stage 1: worth buying, its price in C_spec), then the launch
 * on the arrived guess (stage 2: the guess's price sunk). A late guess is not used and delays
 * nothing; a guess not worth buying is never enqueued.
 */
import { countTokens, createPriceTable, llmCostUsd } from '@gambit/shared';
import { QUEUES, queuePrefix } from '@gambit/shared/redis';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { llm, MODEL } from './workflows.js';

async function submit(url: string, body: Record<string, unknown>): Promise<string> {
  const r = await http(url, 'POST', '/v1/runs', body);
  if (r.status !== 201) throw new Error(`submit failed ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.runId as string;
}

const attemptsOf = (v: RunView, node: string): RunView[] => v.nodes[node].attempts as RunView[];

/** M10: the tenant's budget once no reservation is open (every launch and guess settled). */
async function settledBudget(url: string, tenant: string, spentNanoUsd: number): Promise<{ reservedNanoUsd: number; spentNanoUsd: number }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const cfg = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/config`);
    const b = cfg.body.budget;
    if ((b.reservedNanoUsd === 0 && b.spentNanoUsd === spentNanoUsd) || Date.now() > deadline) return b;
    await new Promise((res) => setTimeout(res, 50));
  }
}
const GUESS_PROMPT = 'Guess the route of: {{inputs.q}}';

function guessedChain(name: string, predictor: Record<string, unknown>, routerTtftMs: number) {
  return {
    name,
    nodes: [
      llm('route', 'Classify: {{inputs.q}}', { output: 'billing', ttftMs: routerTtftMs }, { expectedOutputTokens: 2, maxTokens: 8 }),
      llm('answer', 'Answer the {{nodes.route.output}} question: {{inputs.q}}', { output: 'answer for {{nodes.route.output}}', ttftMs: 700 }, { expectedOutputTokens: 8, maxTokens: 32 }),
    ],
    edges: [{ from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'llm', provider: 'simulated', model: MODEL, prompt: GUESS_PROMPT, expectedOutputTokens: 2, maxTokens: 8, ...predictor } }],
  };
}

describe('M10 llm predictor: two-stage guess purchase (end to end)', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-llmpred', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('an llm predictor without a model, or with a model that has no price, is rejected naming the field', async () => {
    const tenant = await eagerTenant(url, 'guessbad');
    const noModel = guessedChain('guessbadwf', {}, 100);
    (noModel.edges[0]?.predictor as Record<string, unknown>).model = undefined;
    const r1 = await http<RunView>(url, 'POST', '/v1/runs', { tenant, workflow: noModel, inputs: { q: 'x' } });
    expect(r1.status).toBe(400);
    expect(r1.body.error.issues.map((i: RunView) => i.path)).toContain('workflow.edges[0].predictor.model');
    const unknown = guessedChain('guessbadwf', { model: 'no-such-model' }, 100);
    const r2 = await http<RunView>(url, 'POST', '/v1/workflows', { tenant, workflow: unknown });
    expect(r2.status).toBe(400);
    expect(r2.body.error.issues.map((i: RunView) => i.path)).toContain('workflow.edges[0].predictor.model');
  });

  it('M10 a matching guess is bought, the downstream launches on it and hits; the run pays for the guess', async () => {
    const tenant = await eagerTenant(url, 'guesshit');
    const wf = guessedChain('guesshitwf', { simulate: { output: 'billing', ttftMs: 50 } }, 1500);
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'q1' } });
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    const route = attemptsOf(v, 'route')[0];
    const guess = attemptsOf(v, 'answer').find((a) => a.attemptId === 'answer.g-route');
    const spec = attemptsOf(v, 'answer').find((a) => a.attemptId.startsWith('answer.s'));
    // Stage 1: bought after the upstream's authoritative launch, priced into C_spec.
    expect(guess).toMatchObject({ kind: 'speculative', status: 'succeeded', output: 'billing' });
    expect(guess.createdAtMs).toBeGreaterThanOrEqual(route.createdAtMs);
    expect(guess.costNanoUsd).toBeGreaterThan(0);
    const buy = v.decisions.find((d: RunView) => d.decisionId === `${id}:answer:guess-route`);
    const rates = createPriceTable().rates('simulated', MODEL);
    if (rates === undefined) throw new Error('no rates');
    const price = llmCostUsd(rates, { inputTokens: countTokens('Guess the route of: q1'), cachedInputTokens: 0, outputTokens: 2 });
    expect(buy).toMatchObject({ phase: 'runtime', action: 'SPECULATE', reason: 'ev' });
    expect(buy.predictorUsd).toBeCloseTo(price, 12);
    expect(buy.cSpecUsd).toBeGreaterThan(buy.predictorUsd);
    // Stage 2: launched on the arrived guess, the guess's price sunk.
    const launch = v.decisions.find((d: RunView) => d.decisionId === `${id}:answer:runtime`);
    expect(launch).toMatchObject({ action: 'SPECULATE', predictorUsd: 0 });
    expect(spec.assumed).toEqual({ route: 'billing' });
    expect(spec.createdAtMs).toBeGreaterThanOrEqual(guess.finishedAtMs);
    expect(spec.createdAtMs).toBeLessThan(route.finishedAtMs);
    expect(v.nodes.answer.source).toBe('speculative');
    expect(v.nodes.answer.output).toBe('answer for billing');
    // The run's dollars include the predictor call; no attempt was wasted.
    const all = Object.values(v.nodes).flatMap((n: RunView) => n.attempts as RunView[]);
    expect(v.dollars.total.nanoUsd).toBe(all.reduce((sum, a) => sum + (a.costNanoUsd as number), 0));
    expect(v.dollars.speculative.nanoUsd).toBe(spec.costNanoUsd + guess.costNanoUsd);
    expect(v.dollars.wasted.nanoUsd).toBe(0);
    // M10 (issue 9 item 5): the guess is sunk once bought: guess spend on a hit too.
    expect(v.dollars.guesses.nanoUsd).toBe(guess.costNanoUsd);
    const hitOutcome = (await waitForView(url, tenant, id, (x) => x.outcomes.some((o: RunView) => o.kind === 'hit'))).outcomes.find((o: RunView) => o.kind === 'hit');
    expect(hitOutcome.guessUsd).toBeCloseTo(guess.costNanoUsd / 1e9, 12);
    expect(await settledBudget(url, tenant, guess.costNanoUsd)).toEqual({ reservedNanoUsd: 0, spentNanoUsd: guess.costNanoUsd });
  }, 90_000);

  it('M10 a wrong guess: the speculation it enabled misses; the guess is guess spend, as on a hit', async () => {
    const tenant = await eagerTenant(url, 'guessmiss');
    const wf = guessedChain('guessmisswf', { simulate: { output: 'refund', ttftMs: 50 } }, 1500);
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'q4' } });
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    expect(v.nodes.answer.source).toBe('authoritative');
    expect(v.nodes.answer.output).toBe('answer for billing');
    const settled = await waitForView(url, tenant, id, (x) => x.outcomes.some((o: RunView) => o.kind === 'miss'));
    const guess = attemptsOf(settled, 'answer').find((a) => a.attemptId === 'answer.g-route');
    const spec = attemptsOf(settled, 'answer').find((a) => a.attemptId.startsWith('answer.s'));
    expect(spec.assumed).toEqual({ route: 'refund' });
    const miss = settled.outcomes.find((o: RunView) => o.kind === 'miss');
    expect(miss.wasteUsd).toBeCloseTo(spec.costNanoUsd / 1e9, 12);
    expect(miss.guessUsd).toBeCloseTo(guess.costNanoUsd / 1e9, 12);
    expect(settled.dollars.wasted.nanoUsd).toBe(spec.costNanoUsd);
    expect(settled.dollars.guesses.nanoUsd).toBe(guess.costNanoUsd);
    // M10: the tenant's speculative spend is the missed launch plus the guess it was launched on.
    const waste = spec.costNanoUsd + guess.costNanoUsd;
    expect(await settledBudget(url, tenant, waste)).toEqual({ reservedNanoUsd: 0, spentNanoUsd: waste });
  }, 90_000);

  it('M10 a guess that arrives after the upstream finished is not used and delays nothing', async () => {
    const tenant = await eagerTenant(url, 'guesslate');
    const wf = guessedChain('guesslatewf', { simulate: { output: 'billing', ttftMs: 3000 } }, 400);
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'q2' } });
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    const route = attemptsOf(v, 'route')[0];
    const auth = attemptsOf(v, 'answer').filter((a) => a.kind === 'authoritative');
    expect(auth).toHaveLength(1);
    expect(v.nodes.answer.source).toBe('authoritative');
    // The downstream ran on the real output at the plain scheduling gap, not after the guess.
    expect(auth[0].createdAtMs - route.finishedAtMs).toBeLessThan(300);
    expect(attemptsOf(v, 'answer').some((a) => a.attemptId.startsWith('answer.s'))).toBe(false);
    const done = await waitForView(url, tenant, id, (x) => attemptsOf(x, 'answer').some((a) => a.attemptId === 'answer.g-route' && a.finishedAtMs !== undefined));
    const guess = attemptsOf(done, 'answer').find((a) => a.attemptId === 'answer.g-route');
    // M10: the guess was cancelled when its upstream ended (its 3 s first token never came), so
    // it was billed only for what it consumed, not run to its end.
    expect(guess.status).toBe('cancelled');
    expect(guess.output).toBeUndefined();
    expect(guess.finishedAtMs - route.finishedAtMs).toBeLessThan(1500);
    expect(guess.finishedAtMs - guess.createdAtMs).toBeLessThan(3000);
    expect(done.decisions.filter((d: RunView) => d.node === 'answer' && d.phase === 'runtime' && d.action === 'SPECULATE').map((d: RunView) => d.decisionId)).toEqual([`${id}:answer:guess-route`]);
    // Bought and not used: what it consumed is billed to the run as guess spend (M10), not waste.
    expect(done.dollars.guesses.nanoUsd).toBe(guess.costNanoUsd);
    expect(done.dollars.wasted.nanoUsd).toBe(0);
    // M10: the unused guess's reservation is settled as spent.
    expect(await settledBudget(url, tenant, guess.costNanoUsd)).toEqual({ reservedNanoUsd: 0, spentNanoUsd: guess.costNanoUsd });
  }, 90_000);

  it('M10 a guess the tenant budget cannot cover is not bought: the rule WAITs with reason budget and nothing is enqueued', async () => {
    const tenant = await eagerTenant(url, 'guessbudget', { budgetUsd: 0 });
    const wf = guessedChain('guessbudgetwf', { simulate: { output: 'billing', ttftMs: 50 } }, 600);
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'q5' } });
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    const refused = v.decisions.filter((d: RunView) => d.node === 'answer' && d.phase === 'runtime');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ action: 'WAIT', reason: 'budget' });
    expect(refused.some((d: RunView) => d.action === 'SPECULATE')).toBe(false);
    expect(attemptsOf(v, 'answer').map((a) => a.kind)).toEqual(['authoritative']);
    const q = new Queue(QUEUES.spec, { connection: stack.redis, prefix: queuePrefix({ prefix: stack.prefix }) });
    try {
      expect(await q.getJob(`${tenant}~${id}~answer.g-route`)).toBeUndefined();
    } finally {
      await q.close();
    }
    const cfg = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/config`);
    expect(cfg.body.budget).toEqual({ reservedNanoUsd: 0, spentNanoUsd: 0 });
  }, 90_000);

  it('M10 a guess not worth buying (huge predictor prompt, tiny value) WAITs with reason predictor and enqueues nothing', async () => {
    const rates = createPriceTable().rates('simulated', 'gpt-4o');
    expect(rates).toBeDefined();
    const tenant = await eagerTenant(url, 'guessdear', { alpha: 1, lambdaUsdPerSec: 0.001 });
    const hugePrompt = `${'context word '.repeat(10_000)}{{inputs.q}}`;
    const wf = guessedChain('guessdearwf', { model: 'gpt-4o', prompt: hugePrompt, simulate: { output: 'billing', ttftMs: 50 } }, 600);
    const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'q3' } });
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    const buy = v.decisions.find((d: RunView) => d.decisionId === `${id}:answer:guess-route`);
    expect(buy).toMatchObject({ phase: 'runtime', action: 'WAIT', reason: 'predictor' });
    expect(buy.predictorUsd).toBeGreaterThan(0.04);
    // The guess's price is what made it a WAIT: without it the speculation's EV is positive.
    const evWithoutGuess = buy.p * buy.lUsd - (1 - buy.p) * (buy.cFailUsd - buy.predictorUsd);
    expect(evWithoutGuess).toBeGreaterThan(0);
    expect(buy.evUsd).toBeLessThan(buy.thresholdUsd);
    expect(attemptsOf(v, 'answer').map((a) => a.kind)).toEqual(['authoritative']);
    const q = new Queue(QUEUES.spec, { connection: stack.redis, prefix: queuePrefix({ prefix: stack.prefix }) });
    try {
      expect(await q.getJob(`${tenant}~${id}~answer.g-route`)).toBeUndefined();
    } finally {
      await q.close();
    }
    expect(v.dollars.speculative.nanoUsd).toBe(0);
  }, 90_000);
});
