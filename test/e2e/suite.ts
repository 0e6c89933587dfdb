/**
 * The end-to-end suite (M1, M4, M6, M7, M8, M10), defined once and run against a single Redis
 * server (single.test.ts) and a three-master Redis Cluster (cluster.test.ts). Scheduler and
 * worker are separate child processes; the simulated provider has fixed, scaled-down latencies.
 */
import { countTokens, createPriceTable, llmCostUsd, usdToNano } from '@gambit/shared';
import { advanceStreams, classKeys, controlKeys, queueShardOf, runKeys, tenantKeys, toolKeys } from '@gambit/shared/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { llm, MODEL, routerChain } from './workflows.js';

const LABEL_BILLING = 'billing: route this conversation to the billing team for a follow-up call tomorrow';
const LABEL_REFUND = 'refund: send this conversation to the refunds team and close the ticket after review';

async function submit(url: string, body: Record<string, unknown>): Promise<string> {
  const r = await http(url, 'POST', '/v1/runs', body);
  if (r.status !== 201) throw new Error(`submit failed ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.runId as string;
}

function runDurationMs(v: RunView): number {
  return (v.finishedAtMs as number) - (v.createdAtMs as number);
}

function attemptsOf(v: RunView, node: string): RunView[] {
  return v.nodes[node].attempts as RunView[];
}

/** `queueShards`: QUEUE_SHARDS of every scheduler and worker (issue 13 item 4; default 1). */
export function defineE2eSuite(name: string, backend: () => Backend, opts: { queueShards?: number } = {}): void {
  const queueShards = opts.queueShards ?? 1;
  const shardEnv: Record<string, string> = queueShards === 1 ? {} : { QUEUE_SHARDS: String(queueShards) };
  describe(`end to end (${name})`, () => {
    let stack: Stack;
    let url: string;
    beforeAll(async () => {
      stack = await startStack(backend(), { label: `e2e-${name}`, schedulers: 2, workers: 1, schedulerEnv: shardEnv, workerEnv: shardEnv });
      url = stack.urls[0] as string;
    }, 120_000);
    afterAll(async () => {
      await stack?.stop();
    });

    it('M1/M4 a hit saves time against the same run with speculation off and costs the attempt its tokens', async () => {
      const tenant = await eagerTenant(url, 'hit');
      const wf = routerChain('hitwf', 'billing', 'billing');
      const off = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'q1' }, speculation: false }));
      const on = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'q1' } }));
      expect(off.status).toBe('succeeded');
      expect(on.status).toBe('succeeded');
      expect(on.nodes.answer.output).toBe(off.nodes.answer.output);
      expect(on.nodes.answer.source).toBe('speculative');
      // The downstream (~700 ms) ran during the router instead of after it: after the router
      // ends, the run needs only the confirmation, not the downstream's whole duration.
      const tail = (v: RunView) => (v.nodes.answer.finishedAtMs as number) - (attemptsOf(v, 'route')[0].finishedAtMs as number);
      expect(tail(off)).toBeGreaterThan(600);
      expect(tail(on)).toBeLessThan(tail(off) - 400);
      expect(runDurationMs(on)).toBeLessThan(runDurationMs(off));
      const spec = attemptsOf(on, 'answer').find((a) => a.kind === 'speculative');
      expect(spec.status).toBe('succeeded');
      expect(spec.usage.outputTokens).toBeGreaterThan(0);
      const rates = createPriceTable().rates('simulated', MODEL);
      expect(rates).toBeDefined();
      if (rates !== undefined) expect(spec.costNanoUsd).toBe(usdToNano(llmCostUsd(rates, spec.usage)));
      expect(on.dollars.speculative.nanoUsd).toBe(spec.costNanoUsd);
      expect(on.dollars.wasted.nanoUsd).toBe(0);
      const hit = on.outcomes.find((o: RunView) => o.kind === 'hit');
      expect(hit.secondsSaved).toBeGreaterThan(0.3);
      expect(off.decisions.every((d: RunView) => d.action === 'WAIT' && d.reason === 'disabled')).toBe(true);
      expect(off.nodes.answer.attempts.every((a: RunView) => a.kind === 'authoritative')).toBe(true);
      // M9: the edge class was created with its prior where every process sees it.
      const classId = on.decisions.find((d: RunView) => d.phase === 'runtime').edgeClasses[0];
      expect(await stack.redis.hget(classKeys({ prefix: stack.prefix }, classId).posterior, 'stage')).toBe('online');
    });

    it('M4/M8 a miss adds no latency beyond the non-speculative schedule and its waste is recorded', async () => {
      const tenant = await eagerTenant(url, 'miss');
      const wf = routerChain('misswf', 'refund', 'billing');
      const off = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'q2' }, speculation: false }));
      const on = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'q2' } }));
      expect(on.status).toBe('succeeded');
      expect(on.nodes.answer.output).toBe('answer for refund');
      expect(on.nodes.answer.source).toBe('authoritative');
      // The re-execution starts when it would have started anyway: the gap between the router's
      // finish and the downstream's authoritative attempt is the plain scheduling gap.
      const gap = (v: RunView) => (attemptsOf(v, 'answer').find((a) => a.kind === 'authoritative').createdAtMs as number) - (attemptsOf(v, 'route')[0].finishedAtMs as number);
      expect(gap(on)).toBeLessThan(gap(off) + 300);
      expect(runDurationMs(on)).toBeLessThan(runDurationMs(off) + 1000);
      const spec = attemptsOf(on, 'answer').find((a) => a.kind === 'speculative');
      expect(['cancelled', 'superseded']).toContain(spec.status);
      // Fencing: the speculative attempt's output never became the node's.
      expect(on.nodes.answer.output).not.toBe('answer for billing');
      const miss = await waitForView(url, tenant, on.runId, (v) => v.outcomes.some((o: RunView) => o.kind === 'miss'));
      const outcome = miss.outcomes.find((o: RunView) => o.kind === 'miss');
      const specAfter = attemptsOf(miss, 'answer').find((a) => a.kind === 'speculative');
      expect(outcome.wasteUsd).toBeCloseTo(specAfter.costNanoUsd / 1e9, 12);
      expect(miss.dollars.wasted.nanoUsd).toBe(specAfter.costNanoUsd);
      expect(attemptsOf(miss, 'answer').filter((a) => a.kind === 'authoritative')).toHaveLength(1);
      // M10: the launch's reservation is released and the realized waste booked to the tenant.
      const cfg = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/config`);
      expect(cfg.body.budget).toEqual({ reservedNanoUsd: 0, spentNanoUsd: specAfter.costNanoUsd });
    });

    it('M6 an irreversible tool never runs speculatively (the rule is not evaluated)', async () => {
      const tenant = await eagerTenant(url, 'irrev');
      const wf = {
        name: 'chargewf',
        nodes: [
          llm('route', 'Classify {{inputs.q}}', { output: 'charge', ttftMs: 300 }, { expectedOutputTokens: 2, maxTokens: 8 }),
          { id: 'charge', kind: 'tool', tool: 'charge_card', args: { amountCents: 500, note: '{{nodes.route.output}}' } },
        ],
        edges: [{ from: 'route', to: 'charge', type: 'validation_gate', predictor: { kind: 'fixed', value: 'charge' } }],
      };
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'pay' } }));
      expect(v.status).toBe('succeeded');
      expect(attemptsOf(v, 'charge').map((a) => a.kind)).toEqual(['authoritative']);
      const runtime = v.decisions.filter((d: RunView) => d.node === 'charge');
      expect(runtime.length).toBeGreaterThan(0);
      expect(runtime.every((d: RunView) => d.action === 'WAIT' && d.reason === 'inadmissible' && d.cSpecUsd === 0)).toBe(true);
      const charges = (await stack.redis.lrange(toolKeys({ prefix: stack.prefix }, tenant).charges, 0, -1)).map((c) => JSON.parse(c));
      expect(charges).toHaveLength(1);
      expect(charges[0].kind).toBe('authoritative');
    });

    it('M6 a staged effect of a mismatched speculation is never released; a matched one is released once', async () => {
      const tenant = await eagerTenant(url, 'staged');
      const wf = (actual: string) => ({
        name: 'stagedwf',
        nodes: [
          llm('route', 'Classify {{inputs.q}}', { output: actual, ttftMs: 500 }, { expectedOutputTokens: 2, maxTokens: 8 }),
          { id: 'notify', kind: 'tool', tool: 'send_message', effects: 'staged', args: { to: 'customer', body: 'routed to {{nodes.route.output}}' }, expectedDurationMs: 50 },
        ],
        edges: [{ from: 'route', to: 'notify', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } }],
      });
      const miss = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf('refund'), inputs: { q: 'x' } }));
      expect(miss.status).toBe('succeeded');
      const specMiss = attemptsOf(miss, 'notify').find((a) => a.kind === 'speculative');
      expect(specMiss).toBeDefined();
      expect(miss.effects).toEqual([{ type: 'message', to: 'customer', body: 'routed to refund' }]);
      expect(await stack.redis.exists(runKeys({ prefix: stack.prefix }, tenant, miss.runId).staging(specMiss.attemptId))).toBe(0);

      const hit = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf('billing'), inputs: { q: 'y' } }));
      expect(hit.nodes.notify.source).toBe('speculative');
      expect(hit.effects).toEqual([{ type: 'message', to: 'customer', body: 'routed to billing' }]);
    });

    it('M8 a speculation ruled out by the upstream stream is cancelled mid-stream and billed only for what it consumed', async () => {
      const tenant = await eagerTenant(url, 'streamcut');
      const longAnswer = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
      const wf = {
        name: 'streamcutwf',
        nodes: [
          llm('route', 'Classify {{inputs.q}}', { output: LABEL_REFUND, ttftMs: 900, tokensPerSec: 10 }, { expectedOutputTokens: 20, maxTokens: 64 }),
          llm('answer', 'Write a reply for {{nodes.route.output}}', { output: longAnswer, ttftMs: 50, tokensPerSec: 25 }, { expectedOutputTokens: 200, maxTokens: 400 }),
        ],
        edges: [{ from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: LABEL_BILLING } }],
      };
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'z' } }), 60_000);
      expect(v.status).toBe('succeeded');
      const done = await waitForView(url, tenant, v.runId, (x) => x.outcomes.some((o: RunView) => o.kind === 'miss'));
      const spec = attemptsOf(done, 'answer').find((a) => a.kind === 'speculative');
      const routeAttempt = attemptsOf(done, 'route')[0];
      expect(spec.status).toBe('cancelled');
      // Cancelled on the stream's first tokens, long before the router finished.
      expect(spec.finishedAtMs).toBeLessThan(routeAttempt.finishedAtMs - 500);
      const fullTokens = countTokens(longAnswer);
      expect(spec.usage.outputTokens).toBeGreaterThan(0);
      expect(spec.usage.outputTokens).toBeLessThan(fullTokens / 2);
      expect(spec.usageEstimated).toBe(true);
      const rates = createPriceTable().rates('simulated', MODEL);
      if (rates !== undefined) expect(spec.costNanoUsd).toBe(usdToNano(llmCostUsd(rates, spec.usage)));
      const miss = done.outcomes.find((o: RunView) => o.kind === 'miss');
      expect(miss.wasteUsd).toBeCloseTo(spec.costNanoUsd / 1e9, 12);
    });

    it('M8 an answer settled early by the stream launches the waiting downstream before the upstream ends', async () => {
      const tenant = await eagerTenant(url, 'settle');
      const wf = {
        name: 'settlewf',
        nodes: [
          llm(
            'route',
            'Classify {{inputs.q}}',
            { outcomes: [{ value: LABEL_BILLING, weight: 1 }, { value: LABEL_REFUND, weight: 1 }], ttftMs: 300, tokensPerSec: 10 },
            { expectedOutputTokens: 20, maxTokens: 64 },
          ),
          llm('answer', 'Reply for {{nodes.route.output}}', { output: 'done', ttftMs: 300 }, { expectedOutputTokens: 4, maxTokens: 16 }),
        ],
        // No history and no fallback: at run time there is no guess, so the runtime decision WAITs.
        edges: [{ from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'most_frequent' } }],
      };
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 's' } }), 60_000);
      expect(v.status).toBe('succeeded');
      const runtime = v.decisions.find((d: RunView) => d.phase === 'runtime');
      expect(runtime.action).toBe('WAIT');
      expect(runtime.reason).toBe('no_prediction');
      const stream = v.decisions.find((d: RunView) => d.phase === 'stream');
      expect(stream.action).toBe('SPECULATE');
      const spec = attemptsOf(v, 'answer').find((a) => a.kind === 'speculative');
      const routeAttempt = attemptsOf(v, 'route')[0];
      expect(spec.createdAtMs).toBeLessThan(routeAttempt.finishedAtMs - 500);
      expect(v.nodes.answer.source).toBe('speculative');
    });

    it('M7 two schedulers serving the same runs never execute an authoritative node twice', async () => {
      const tenant = await eagerTenant(url, 'two');
      const wf = {
        name: 'fanwf',
        nodes: [
          llm('a', 'A {{inputs.q}}', { output: 'x', ttftMs: 20 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          llm('b', 'B {{nodes.a.output}}', { output: 'y', ttftMs: 20 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          llm('c', 'C {{nodes.a.output}}', { output: 'z', ttftMs: 20 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          llm('d', 'D {{nodes.b.output}} {{nodes.c.output}}', { output: 'w', ttftMs: 20 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        ],
        edges: [
          { from: 'a', to: 'b', type: 'passthrough', predictor: { kind: 'fixed', value: 'x' } },
          { from: 'a', to: 'c', type: 'passthrough', predictor: { kind: 'fixed', value: 'nope' } },
          { from: 'b', to: 'd', type: 'passthrough', predictor: { kind: 'fixed', value: 'y' } },
          { from: 'c', to: 'd', type: 'passthrough', predictor: { kind: 'fixed', value: 'z' } },
        ],
      };
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) ids.push(await submit(stack.urls[i % stack.urls.length] as string, { tenant, workflow: wf, inputs: { q: String(i) } }));
      for (const id of ids) {
        const v = await waitForRun(stack.urls[1] as string, tenant, id);
        expect(v.status).toBe('succeeded');
        for (const node of ['a', 'b', 'c', 'd']) {
          const auth = attemptsOf(v, node).filter((a) => a.kind === 'authoritative');
          expect(auth.length).toBeLessThanOrEqual(1);
          if (v.nodes[node].source === 'authoritative') expect(auth).toHaveLength(1);
        }
        expect(v.nodes.d.output).toBe('w');
      }
    });

    it('M9 shadow stage: predicts and decides but launches nothing, then scores the guess at no token cost', async () => {
      const tenant = await eagerTenant(url, 'shadow', { initialStage: 'shadow' });
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: routerChain('shadowwf', 'billing', 'billing'), inputs: { q: 's' } }));
      expect(v.status).toBe('succeeded');
      expect(attemptsOf(v, 'answer').map((a) => a.kind)).toEqual(['authoritative']);
      const runtime = v.decisions.find((d: RunView) => d.phase === 'runtime');
      expect(runtime).toMatchObject({ action: 'WAIT', reason: 'stage', stage: 'shadow' });
      const scored = await waitForView(url, tenant, v.runId, (x) => x.outcomes.some((o: RunView) => o.kind === 'shadow_hit'));
      const outcome = scored.outcomes.find((o: RunView) => o.kind === 'shadow_hit');
      expect(outcome).toMatchObject({ decisionId: runtime.decisionId, wasteUsd: 0, edgeClass: runtime.edgeClasses[0] });
      expect(scored.dollars.speculative.nanoUsd).toBe(0);
      // Published to the estimators' stream.
      const entries = await stack.redis.xrange(controlKeys({ prefix: stack.prefix }).outcomes, '-', '+');
      expect(entries.some(([, fields]) => (fields[1] ?? '').includes(outcome.outcomeId))).toBe(true);
    });

    it('M9 a class kill cancels its in-flight speculation at once; the node then runs for real', async () => {
      const tenant = await eagerTenant(url, 'killsw');
      const wf = routerChain('killwf', 'billing', 'billing', { routerTtftMs: 2500, downTtftMs: 3000 });
      const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'k' } });
      const running = await waitForView(url, tenant, id, (v) => attemptsOf(v, 'answer').some((a) => a.kind === 'speculative' && a.status === 'running'));
      const classId = running.decisions.find((d: RunView) => d.phase === 'runtime').edgeClasses[0] as string;
      const k = await http(stack.urls[1] as string, 'POST', '/v1/kill', { scope: 'class', classId, reason: 'test' });
      expect(k.status).toBe(200);
      const cancelled = await waitForView(url, tenant, id, (v) => attemptsOf(v, 'answer').some((a) => a.kind === 'speculative' && a.status === 'cancelled'), 5_000);
      expect(cancelled.status).toBe('running');
      const cls = await http(url, 'GET', `/v1/classes/${encodeURIComponent(classId)}`);
      expect(cls.status).toBe(200);
      // An operator kill blocks the class without touching its stage or posterior.
      expect(cls.body).toMatchObject({ stage: 'online', blocked: { blocked: true, scope: 'class' }, kill: { reason: 'test', source: 'operator' } });
      const done = await waitForRun(url, tenant, id, 30_000);
      expect(done.status).toBe('succeeded');
      expect(done.nodes.answer.source).toBe('authoritative');
      const settled = await waitForView(url, tenant, id, (v) => v.outcomes.some((o: RunView) => o.kind === 'cancelled'));
      expect(settled.outcomes.find((o: RunView) => o.kind === 'cancelled').wasteUsd).toBeGreaterThanOrEqual(0);
      // Later decisions of the class see the kill.
      const next = await waitForRun(url, tenant, await submit(url, { tenant, workflow: routerChain('killwf', 'billing', 'billing', { routerTtftMs: 200, downTtftMs: 200 }), inputs: { q: 'k2' } }));
      expect(next.decisions.find((d: RunView) => d.phase === 'runtime')).toMatchObject({ action: 'WAIT', reason: 'killed' });
      expect((await http(url, 'GET', '/v1/classes/no-such-class')).status).toBe(404);
    });

    it('M8 progressive validation: a join speculated on two upstreams is cancelled at the first miss', async () => {
      const tenant = await eagerTenant(url, 'join');
      const wf = {
        name: 'joinwf',
        nodes: [
          llm('fast', 'F {{inputs.q}}', { output: 'red', ttftMs: 400 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          llm('slow', 'S {{inputs.q}}', { output: 'square', ttftMs: 2500 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          llm('join', 'J {{nodes.fast.output}} {{nodes.slow.output}}', { output: 'joined', ttftMs: 3000 }, { expectedOutputTokens: 4, maxTokens: 8 }),
        ],
        edges: [
          { from: 'fast', to: 'join', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'blue' } },
          { from: 'slow', to: 'join', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'square' } },
        ],
      };
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'j' } }), 60_000);
      expect(v.status).toBe('succeeded');
      const runtime = v.decisions.find((d: RunView) => d.phase === 'runtime');
      expect(runtime.action).toBe('SPECULATE');
      expect(runtime.edgeClasses).toHaveLength(2);
      expect(runtime.p).toBeCloseTo(0.25, 10);
      const spec = attemptsOf(v, 'join').find((a) => a.kind === 'speculative');
      const slow = attemptsOf(v, 'slow')[0];
      expect(spec.assumed).toEqual({ fast: 'blue', slow: 'square' });
      expect(spec.status).toBe('cancelled');
      // Cancelled when the fast upstream missed, without waiting for the slow one.
      expect(spec.finishedAtMs).toBeLessThan(slow.finishedAtMs - 1000);
      expect(v.nodes.join.source).toBe('authoritative');
      const miss = await waitForView(url, tenant, v.runId, (x) => x.outcomes.some((o: RunView) => o.kind === 'miss'));
      expect(miss.outcomes.filter((o: RunView) => o.kind === 'miss').map((o: RunView) => o.edgeClass)).toEqual([runtime.edgeClasses[0]]);
    });

    it('a node that fails for good fails the run; a registered workflow runs by name; a client run id is idempotent', async () => {
      const tenant = await eagerTenant(url, 'misc');
      const broken = {
        name: 'brokenwf',
        nodes: [{ id: 'x', kind: 'tool', tool: 'no_such_tool', effects: 'none', args: {} }],
      };
      const failed = await waitForRun(url, tenant, await submit(url, { tenant, workflow: broken }), 60_000);
      expect(failed.status).toBe('failed');
      expect(failed.nodes.x.state).toBe('failed');
      const reg = await http(url, 'POST', '/v1/workflows', { tenant, workflow: routerChain('named', 'billing', 'billing') });
      expect(reg.status).toBe(201);
      const list = await http<RunView>(stack.urls[1] as string, 'GET', `/v1/workflows?tenant=${tenant}`);
      expect(list.body.workflows.map((w: RunView) => w.name)).toEqual(['named']);
      const first = await http(url, 'POST', '/v1/runs', { tenant, workflow: 'named', inputs: { q: 'n' }, runId: 'client-run-1' });
      expect(first.status).toBe(201);
      const again = await http(stack.urls[1] as string, 'POST', '/v1/runs', { tenant, workflow: 'named', inputs: { q: 'other' }, runId: 'client-run-1' });
      expect(again.status).toBe(200);
      const v = await waitForRun(url, tenant, 'client-run-1');
      expect(v.status).toBe('succeeded');
      expect(attemptsOf(v, 'route').filter((a) => a.kind === 'authoritative')).toHaveLength(1);
      expect(v.nodes.answer.output).toBe('answer for billing');
      const decisions = await http<RunView>(url, 'GET', `/v1/runs/${tenant}/client-run-1/decisions`);
      expect(decisions.body.decisions.map((d: RunView) => d.phase)).toEqual(['plan', 'runtime']);
      expect((await http(url, 'GET', `/v1/runs/${tenant}/nope`)).status).toBe(404);
    });

    it('M3 turning the dial mid-run takes effect on the next decision', async () => {
      // Tool downstreams with C_spec = C_fail = $0.01, ΔT = their declared 1 s, P = 0.9
      // (passthrough prior), λ = $0.005/s: EV = 0.9·0.005 − 0.1·0.01 = $0.0035, which passes at
      // α = 1 (threshold 0) and fails at α = 0 (threshold $0.01).
      const tenant = await eagerTenant(url, 'dial', { alpha: 1, lambdaUsdPerSec: 0.005 });
      const echo = (id: string, from: string) => ({ id, kind: 'tool', tool: 'echo', effects: 'none', priceUsd: 0.01, expectedDurationMs: 1000, args: { text: `{{nodes.${from}.output}}` } });
      const wf = {
        name: 'dialwf',
        nodes: [
          llm('a', 'A {{inputs.q}}', { output: 'x', ttftMs: 2500 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          echo('t1', 'a'),
          llm('b', 'B {{nodes.t1.output}}', { output: 'y', ttftMs: 2500 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          echo('t2', 'b'),
        ],
        edges: [
          { from: 'a', to: 't1', type: 'passthrough', predictor: { kind: 'fixed', value: 'x' } },
          { from: 't1', to: 'b', type: 'passthrough', speculate: false },
          { from: 'b', to: 't2', type: 'passthrough', predictor: { kind: 'fixed', value: 'y' } },
        ],
      };
      const id = await submit(url, { tenant, workflow: wf, inputs: { q: 'd' } });
      const first = await waitForView(url, tenant, id, (v) => v.decisions.some((d: RunView) => d.phase === 'runtime' && d.node === 't1'));
      expect(first.decisions.find((d: RunView) => d.phase === 'runtime' && d.node === 't1')).toMatchObject({ action: 'SPECULATE', alpha: 1 });
      expect(first.nodes.b.state).toBe('pending');
      const dial = await http(stack.urls[1] as string, 'PUT', `/v1/runs/${tenant}/${id}/dial`, { alpha: 0 });
      expect(dial.status).toBe(200);
      const v = await waitForRun(url, tenant, id, 30_000);
      expect(v.status).toBe('succeeded');
      const t2 = v.decisions.find((d: RunView) => d.phase === 'runtime' && d.node === 't2');
      expect(t2).toMatchObject({ action: 'WAIT', reason: 'below_threshold', alpha: 0 });
      expect(t2.evUsd).toBeGreaterThan(0);
      expect(t2.evUsd).toBeLessThan(t2.thresholdUsd);
      expect(v.alpha).toBe(0);
    });

    it('predictors learn from history: most frequent label (router) and identical past request (lookup)', async () => {
      const tenant = await eagerTenant(url, 'learn');
      await stack.redis.hset(toolKeys({ prefix: stack.prefix }, tenant).kv('customers'), 'c42', 'gold');
      const wf = {
        name: 'learnwf',
        nodes: [
          llm('route', 'Classify {{inputs.q}}', { output: 'billing', ttftMs: 400 }, { expectedOutputTokens: 2, maxTokens: 8 }),
          { id: 'tier', kind: 'tool', tool: 'kv_lookup', effects: 'idempotent', args: { table: 'customers', key: '{{inputs.customer}}' }, expectedDurationMs: 400 },
          llm('answer', 'Answer the {{nodes.route.output}} question for a {{nodes.tier.output}} customer', { output: 'ok', ttftMs: 400 }, { expectedOutputTokens: 4, maxTokens: 8 }),
        ],
        edges: [
          { from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'most_frequent' } },
          { from: 'tier', to: 'answer', type: 'lookup' },
        ],
      };
      const first = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'a', customer: 'c42' } }));
      expect(first.status).toBe('succeeded');
      expect(first.decisions.find((d: RunView) => d.phase === 'runtime')).toMatchObject({ action: 'WAIT', reason: 'no_prediction' });
      const second = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf, inputs: { q: 'a', customer: 'c42' } }));
      expect(second.decisions.find((d: RunView) => d.phase === 'runtime')).toMatchObject({ action: 'SPECULATE' });
      const spec = attemptsOf(second, 'answer').find((a) => a.kind === 'speculative');
      expect(spec.assumed).toEqual({ route: 'billing', tier: 'gold' });
      expect(second.nodes.answer.source).toBe('speculative');
    });

    it('M8 cascade (depth 2): a speculative result feeds a further speculation; an upstream miss cancels the subtree', async () => {
      const tenant = await eagerTenant(url, 'cascade');
      const wf = (actual: string) => ({
        name: 'cascadewf',
        nodes: [
          llm('route', 'Classify {{inputs.q}}', { output: actual, ttftMs: 1800 }, { expectedOutputTokens: 1, maxTokens: 4 }),
          // Simulated outputs follow the inputs, so an attempt on a wrong guess produces a wrong result.
          llm('draft', 'Draft for {{nodes.route.output}}', { output: 'draft for {{nodes.route.output}}', ttftMs: 250 }, { expectedOutputTokens: 4, maxTokens: 16 }),
          llm('polish', 'Polish: {{nodes.draft.output}}', { output: 'polished {{nodes.draft.output}}', ttftMs: 250 }, { expectedOutputTokens: 4, maxTokens: 16 }),
        ],
        edges: [
          { from: 'route', to: 'draft', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } },
          { from: 'draft', to: 'polish', type: 'free_text' },
        ],
      });
      const hit = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf('billing'), inputs: { q: 'c' } }), 60_000);
      expect(hit.status).toBe('succeeded');
      const route = attemptsOf(hit, 'route')[0];
      const polishSpec = attemptsOf(hit, 'polish').find((a) => a.kind === 'speculative');
      expect(polishSpec.assumed).toEqual({ draft: 'draft for billing' });
      // Launched on the draft's speculative result, before the router finished.
      expect(polishSpec.createdAtMs).toBeLessThan(route.finishedAtMs);
      expect(hit.nodes.draft.source).toBe('speculative');
      expect(hit.nodes.polish.source).toBe('speculative');
      expect(hit.nodes.polish.output).toBe('polished draft for billing');
      const decision = hit.decisions.find((d: RunView) => d.phase === 'runtime' && d.node === 'polish');
      // P of the cascade is the upstream speculation's (router, k = 2: 1/2), not the free-text prior.
      expect(decision).toMatchObject({ action: 'SPECULATE', edgeClasses: [`${tenant}/cascadewf/draft->polish`] });
      expect(decision.p).toBeCloseTo(0.5, 10);
      // Without speculation draft and polish would each still need their 250 ms after the router.
      expect(hit.nodes.polish.finishedAtMs).toBeLessThan(route.finishedAtMs + 500);

      const miss = await waitForRun(url, tenant, await submit(url, { tenant, workflow: wf('refund'), inputs: { q: 'c2' } }), 60_000);
      expect(miss.status).toBe('succeeded');
      expect(miss.nodes.polish.output).toBe('polished draft for refund');
      expect(miss.nodes.polish.source).toBe('authoritative');
      const cancelledPolish = attemptsOf(miss, 'polish').find((a) => a.kind === 'speculative');
      const missRoute = attemptsOf(miss, 'route')[0];
      expect(['cancelled', 'superseded']).toContain(cancelledPolish.status);
      expect(miss.nodes.polish.attempts.filter((a: RunView) => a.kind === 'authoritative')).toHaveLength(1);
      const authDraft = attemptsOf(miss, 'draft').find((a) => a.kind === 'authoritative');
      expect(authDraft.createdAtMs).toBeGreaterThanOrEqual(missRoute.finishedAtMs);
    });

    it('M10 a budget that cannot cover C_spec makes the rule WAIT for budget', async () => {
      const tenant = await eagerTenant(url, 'budget', { budgetUsd: 0 });
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: routerChain('budgetwf', 'billing', 'billing'), inputs: { q: 'b' } }));
      expect(v.status).toBe('succeeded');
      const runtime = v.decisions.find((d: RunView) => d.phase === 'runtime');
      expect(runtime.action).toBe('WAIT');
      expect(runtime.reason).toBe('budget');
      expect(attemptsOf(v, 'answer').every((a) => a.kind === 'authoritative')).toBe(true);
    });

    it('cancelling a run fences every unfinished attempt', async () => {
      const tenant = await eagerTenant(url, 'cancel');
      const id = await submit(url, { tenant, workflow: routerChain('cancelwf', 'billing', 'billing', { routerTtftMs: 3000, downTtftMs: 3000 }), inputs: { q: 'c' } });
      await waitForView(url, tenant, id, (v) => v.nodes.route.state === 'running');
      const r = await http(url, 'POST', `/v1/runs/${tenant}/${id}/cancel`, {});
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('cancelled');
      const v = await waitForView(url, tenant, id, (x) => Object.values(x.nodes).every((n: RunView) => n.attempts.every((a: RunView) => a.finishedAtMs !== undefined)));
      expect(v.status).toBe('cancelled');
      for (const n of Object.values(v.nodes) as RunView[]) {
        expect(n.state).toBe('cancelled');
        for (const a of n.attempts) expect(a.status).toBe('cancelled');
      }
    });

    it('an invalid advance event fails loudly (dead-lettered once, with the reason), and the scheduler keeps serving', async () => {
      // The stream of tenant `t`'s queue shard (the one stream with one shard).
      const k = advanceStreams({ prefix: stack.prefix }, queueShards)[queueShardOf('t', queueShards)] as { stream: string; dead: string };
      // Written as a producer would, bypassing publishAdvance's validation.
      const id = await stack.redis.xadd(k.stream, '*', 'e', JSON.stringify({ type: 'attempt_finished', tenant: 't', runId: 'r' }));
      const deadline = Date.now() + 15_000;
      let dead: Array<[string, string[]]> = [];
      while (Date.now() < deadline) {
        dead = ((await stack.redis.xrange(k.dead, '-', '+')) as Array<[string, string[]]>).filter(([, f]) => f[f.indexOf('id') + 1] === id);
        if (dead.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(dead).toHaveLength(1);
      const fields = (dead[0] as [string, string[]])[1];
      expect(fields[fields.indexOf('reason') + 1]).toMatch(/invalid advance event: event\.(nodeId|attemptId|epoch)/);
      // Acknowledged and removed (right after the dead letter): it is not tried again.
      let left = 1;
      while (left > 0 && Date.now() < deadline) {
        left = ((await stack.redis.xrange(k.stream, id as string, id as string)) as unknown[]).length;
        if (left > 0) await new Promise((r) => setTimeout(r, 20));
      }
      expect(left).toBe(0);
      const tenant = await eagerTenant(url, 'afterbad');
      const v = await waitForRun(url, tenant, await submit(url, { tenant, workflow: routerChain('afterbadwf', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 }), inputs: { q: 'x' } }));
      expect(v.status).toBe('succeeded');
    });

    it('bad input gets a 4xx naming the field, and nothing is stored for it', async () => {
      const tenant = await eagerTenant(url, 'bad');
      const base = routerChain('badwf', 'billing', 'billing');
      const cases: Array<[unknown, number, string]> = [
        [{ tenant, workflow: { ...base, nodes: [] }, inputs: { q: 1 } }, 400, 'workflow.nodes'],
        [{ tenant, workflow: { ...base, edges: [...base.edges, { from: 'answer', to: 'route', type: 'passthrough' }] }, inputs: { q: 1 } }, 400, 'workflow.edges'],
        [{ tenant, workflow: { ...base, nodes: [{ ...base.nodes[0], model: 'no-such-model-xyz' }, base.nodes[1]] }, inputs: { q: 1 } }, 400, 'workflow.nodes[0].model'],
        [{ tenant, workflow: { ...base, nodes: [{ ...base.nodes[0], maxTokens: 'ten' }, base.nodes[1]] }, inputs: { q: 1 } }, 400, 'workflow.nodes[0].maxTokens'],
        [{ tenant, workflow: base, inputs: {} }, 400, 'inputs.q'],
        [{ tenant: 'bad tenant{', workflow: base, inputs: { q: 1 } }, 400, 'tenant'],
        [{ tenant, workflow: base, inputs: { q: 1 }, alpha: 2 }, 400, 'alpha'],
        [{ tenant, workflow: 'not-registered', inputs: { q: 1 } }, 400, 'workflow'],
      ];
      for (const [body, status, path] of cases) {
        const r = await http<RunView>(url, 'POST', '/v1/runs', body);
        expect(r.status, JSON.stringify(r.body)).toBe(status);
        expect(r.body.error.issues.map((i: RunView) => i.path)).toContain(path);
      }
      const big = await http<RunView>(url, 'POST', '/v1/runs', { tenant, workflow: base, inputs: { q: 'x'.repeat(2_000_000) } });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      const badJson = await http<RunView>(url, 'POST', '/v1/runs', '{"tenant": ');
      expect(badJson.status).toBe(400);
      const dial = await http<RunView>(url, 'PUT', `/v1/runs/${tenant}/nope/dial`, { alpha: 'high' });
      expect(dial.status).toBe(400);
      expect(dial.body.error.issues[0].path).toBe('alpha');
      expect(await stack.redis.zcard(tenantKeys({ prefix: stack.prefix }, tenant).runs)).toBe(0);
    });
  });
}
