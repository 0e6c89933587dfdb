/**
 * M4, M5, M8, M9 stage 1, M11: the replay engine. `never` reproduces every recorded run exactly;
 * the policies keep the method's invariants (a miss costs money, never latency; the oracle never
 * wastes; `always` wastes most); every EV decision is the core's `decide` on the recorded inputs.
 */
import {
  ConfiguredPriceTable,
  costAtUsd,
  DecisionRecordSchema,
  decide,
  llmCostUsd,
  loadSnapshotPriceTable,
  mulberry32,
  nanoToUsd,
  priorFor,
  usdToNano,
} from '@gambit/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import { ARCHETYPES } from '../archetypes/index.js';
import { importTauBench, loadTauBenchData } from '../import/tau-bench.js';
import { type Run, type RunInput, RunSchema, runDurationMs } from '../trace.js';
import { compileRun } from './model.js';
import { toDecisionRecord } from './records.js';
import { replay } from './replay.js';
import { POLICIES, type PolicyName, type ReplayDecision } from './schedule.js';
import { headroom, summarize } from './summary.js';

const prices = loadSnapshotPriceTable();
const dial = { alpha: 0.5, lambdaUsdPerSec: 0.01 };

/** A gpt-4o-mini call of the trace format (tokens in and out as given). */
const llmOp = (id: string, deps: string[], startMs: number, durationMs: number, inputTokens = 100, outputTokens = 10) => ({
  id,
  kind: 'llm' as const,
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'gpt-4o-mini',
  dependencies: deps,
  startMs,
  durationMs,
  'gen_ai.usage.input_tokens': inputTokens,
  'gen_ai.usage.output_tokens': outputTokens,
});

let tau: Run[];
beforeAll(() => {
  tau = importTauBench(loadTauBenchData());
});

function byPolicy(result: ReturnType<typeof replay>, p: PolicyName) {
  return result.policies.find((x) => x.policy === p)!.runs;
}

describe('M9 stage 1: replay under `never` reproduces the recorded runs', () => {
  it('tau-bench and every archetype: same duration and same cost, exactly', () => {
    const traces = [tau, ...ARCHETYPES.map((a) => a.generate({ seed: 7, runs: 40 }))];
    for (const runs of traces) {
      const result = replay(runs, { policies: ['never'], dial, prices });
      const never = byPolicy(result, 'never');
      const ordered = [...runs].sort((a, b) => a.startUnixMs - b.startUnixMs);
      never.forEach((r, k) => {
        const run = ordered[k]!;
        expect(r.runId).toBe(run.runId);
        expect(r.durationMs).toBe(runDurationMs(run));
        expect(r.costNano).toBe(compileRun(run, { prices }).recordedCostNano);
        expect(r.wasteNano).toBe(0);
        expect(r.speculations).toBe(0);
      });
    }
  });

  it('recorded costs are used as recorded, and gaps (queueing, think time) are replayed unchanged', () => {
    const run: RunInput = {
      v: 1,
      runId: 'g',
      tenant: 't',
      workflow: 'w',
      startUnixMs: 0,
      operations: [
        { id: 'a', kind: 'llm', 'gen_ai.provider.name': 'x', 'gen_ai.request.model': 'unpriced', startMs: 5, durationMs: 100, costNanoUsd: 123 },
        { id: 'b', kind: 'tool', 'gen_ai.tool.name': 'lookup', dependencies: ['a'], startMs: 150.5, durationMs: 10, costNanoUsd: 7 },
      ],
    };
    const [r] = byPolicy(replay([RunSchema.parse(run)], { policies: ['never'], dial, prices }), 'never');
    expect(r!.durationMs).toBe(160.5);
    expect(r!.costNano).toBe(130);
  });
});

/** A two-step chain: classify (1 s) → draft (3 s), gpt-4o-mini then gpt-4o, with one opportunity. */
function chain(runId: string, startUnixMs: number, matched: boolean): Run {
  return RunSchema.parse({
    v: 1,
    runId,
    tenant: 't',
    workflow: 'auto',
    startUnixMs,
    operations: [
      {
        id: 'classify',
        kind: 'llm',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        startMs: 0,
        durationMs: 1000,
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 2,
      },
      {
        id: 'draft',
        kind: 'llm',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        dependencies: ['classify'],
        startMs: 1000,
        durationMs: 3000,
        'gen_ai.usage.input_tokens': 2000,
        'gen_ai.usage.output_tokens': 300,
      },
    ],
    opportunities: [{ from: 'classify', to: 'draft', type: 'router_k_way', k: 4, guess: 'billing', matched }],
  });
}

describe('M0, M4, M8: the schedule of a hit and of a miss', () => {
  it('a hit starts the downstream at the upstream start; a miss keeps the recorded latency and bills fractional waste', () => {
    const runs = [chain('hit', 0, true), chain('miss', 1, false)];
    const result = replay(runs, { policies: ['never', 'always'], dial, prices, keepDecisions: true });
    const [hit, miss] = byPolicy(result, 'always');
    expect(hit!.durationMs).toBe(3000);
    expect(hit!.wasteNano).toBe(0);
    expect(miss!.durationMs).toBe(4000);
    const gpt4o = prices.rates('openai', 'gpt-4o')!;
    const d = compileRun(runs[1]!, { prices }).byId.get('draft')!;
    // Cancelled when classify ends, 1 s after the speculative draft started (M8).
    expect(miss!.wasteNano).toBe(usdToNano(costAtUsd(d.attempt!, 1000)));
    expect(miss!.wasteNano).toBeLessThan(usdToNano(llmCostUsd(gpt4o, { inputTokens: 2000, cachedInputTokens: 0, outputTokens: 300 })));
    expect(miss!.costNano).toBe(byPolicy(result, 'never')[1]!.costNano + miss!.wasteNano);
    // The record: ΔT = E[min(T_up, T_down)] on a chain, a little under min of the means = 1 s
    // (durations spread around their estimates, M4); C_spec = the draft's cost.
    const rec = hit!.decisions![0]!;
    expect(rec.input.deltaTSec).toBeLessThan(1);
    expect(rec.input.deltaTSec).toBeGreaterThan(0.95);
    expect(rec.input.cSpecUsd).toBeCloseTo(llmCostUsd(gpt4o, { inputTokens: 2000, cachedInputTokens: 0, outputTokens: 300 }), 12);
    expect(Math.abs(rec.input.cSpecUsd - nanoToUsd(d.costNano))).toBeLessThan(1e-9);
    expect(rec.decision.p).toBeCloseTo(0.25, 12); // Beta(1, 3): router_k_way prior with k = 4 (M5)
  });

  it('M8: a downstream without a guess of its own consumes a speculative result only once it is confirmed', () => {
    const llm = (id: string, deps: string[], startMs: number, durationMs: number) => llmOp(id, deps, startMs, durationMs);
    const run = RunSchema.parse({
      v: 1,
      runId: 'c',
      tenant: 't',
      workflow: 'w',
      startUnixMs: 0,
      operations: [llm('a', [], 0, 3000), llm('b', ['a'], 3000, 1000), llm('c', ['b'], 4000, 500)],
      opportunities: [{ from: 'a', to: 'b', type: 'passthrough', guess: 'x', matched: true }],
    });
    const result = replay([run], { policies: ['never', 'always'], dial, prices });
    expect(byPolicy(result, 'never')[0]!.durationMs).toBe(4500);
    // b runs 0..1000 on the guess, but its output is confirmed only when a ends at 3000.
    expect(byPolicy(result, 'always')[0]!.durationMs).toBe(3500);
  });

  /** a (3 s) → b (bLen) → c (1 s), opportunities a → b and b → c; gpt-4o-mini throughout. */
  const cascadeRun = (runId: string, bLen: number, abMatched: boolean, speculative?: object): Run => {
    const llm = (id: string, deps: string[], startMs: number, durationMs: number, out = 10) => llmOp(id, deps, startMs, durationMs, 1000, out);
    return RunSchema.parse({
      v: 3,
      runId,
      tenant: 't',
      workflow: 'w',
      startUnixMs: 0,
      operations: [llm('a', [], 0, 3000), llm('b', ['a'], 3000, bLen), { ...llm('c', ['b'], 3000 + bLen, 1000, 400), ...(speculative === undefined ? {} : { speculative }) }],
      opportunities: [
        { from: 'a', to: 'b', type: 'passthrough', guess: 'x', matched: abMatched },
        { from: 'b', to: 'c', type: 'lookup', guess: 'y', matched: true },
      ],
    });
  };

  it('M8 cascade (depth 2): decided once on the upstream speculation\'s result, with its P, and cancelled with it', () => {
    const hit = cascadeRun('hit', 1000, true);
    const miss = cascadeRun('miss', 1000, false);
    const result = replay([hit, miss], { policies: ['never', 'always'], dial, prices, keepDecisions: true });
    const [h, m] = byPolicy(result, 'always');
    const cOf = (r: typeof h) => r!.decisions!.find((d) => d.node === 'c')!;
    // b runs 0..1000 on a's guess and is done while a still runs: c is decided at 1000, not at 0
    // (b's start, where a predictor would have guessed b), as a cascade whose P is a → b's alone.
    expect(cOf(h).cascade).toBe(true);
    expect(cOf(h).atMs).toBe(1000);
    expect(cOf(h).input.edges).toHaveLength(1);
    expect(cOf(h).decision.p).toBeCloseTo(priorFor('passthrough').a / (priorFor('passthrough').a + priorFor('passthrough').b), 12);
    expect(cOf(h).hit).toBe(true);
    // c runs 1000..2000; b and c are confirmed when a ends at 3000.
    expect(h!.durationMs).toBe(3000);
    // a → b misses: b's speculation is found wrong at 3000, and c (cascade) is cancelled with it,
    // after 2 s, although c's own guess of b (`y`) matched; c is not decided again.
    expect(cOf(m).cascade).toBe(true);
    expect(cOf(m).hit).toBe(false);
    expect(m!.decisions!.filter((d) => d.node === 'c')).toHaveLength(1);
    const c = compileRun(miss, { prices }).byId.get('c')!;
    expect(cOf(m).wasteNano).toBe(usdToNano(costAtUsd(c.attempt!, 2000)));
    expect(m!.durationMs).toBe(5000);
  });

  it('M8: an upstream speculation still running when its guess is confirmed offers no guess: the downstream is not decided', () => {
    const late = cascadeRun('late', 4000, true);
    const result = replay([late], { policies: ['never', 'always'], dial, prices, keepDecisions: true });
    const [r] = byPolicy(result, 'always');
    // b runs 0..4000 on a's guess; a is confirmed at 3000, b at 4000; c is never decided and runs after b.
    expect(r!.decisions!.map((d) => d.node)).toEqual(['b']);
    expect(r!.durationMs).toBe(5000);
  });

  it('issue 9 item 8: a miss is billed from the speculative attempt\'s own operation when the trace records it', () => {
    const spec = { kind: 'llm', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', durationMs: 1500, timeToFirstTokenMs: 500, 'gen_ai.usage.input_tokens': 3000, 'gen_ai.usage.output_tokens': 100 };
    const recorded = cascadeRun('rec', 1000, false);
    const own = cascadeRun('own', 1000, false, spec);
    const result = replay([recorded, own], { policies: ['always'], dial, prices, keepDecisions: true });
    const [r, o] = byPolicy(result, 'always');
    const cRec = r!.decisions!.find((d) => d.node === 'c')!;
    const cOwn = o!.decisions!.find((d) => d.node === 'c')!;
    const gpt4o = prices.rates('openai', 'gpt-4o')!;
    // Cancelled 2 s after its start: 3000 input tokens and all 100 output tokens (streamed 0.5..1.5 s) of gpt-4o.
    expect(cOwn.wasteNano).toBe(usdToNano(llmCostUsd(gpt4o, { inputTokens: 3000, cachedInputTokens: 0, outputTokens: 100 })));
    expect(cOwn.wasteNano).not.toBe(cRec.wasteNano);
    expect(compileRun(own, { prices }).byId.get('c')!.miss.source).toBe('speculative');
    expect(compileRun(recorded, { prices }).byId.get('c')!.miss.source).toBe('recorded');
    // A cancelled recording that produced nothing had not reached its first token: input only up to its duration.
    const cancelled = cascadeRun('cx', 1000, false, { ...spec, timeToFirstTokenMs: undefined, cancelled: true, durationMs: 2500, 'gen_ai.usage.output_tokens': 0 });
    const [x] = byPolicy(replay([cancelled], { policies: ['always'], dial, prices, keepDecisions: true }), 'always');
    expect(x!.decisions!.find((d) => d.node === 'c')!.wasteNano).toBe(usdToNano(llmCostUsd(gpt4o, { inputTokens: 3000, cachedInputTokens: 0, outputTokens: 0 })));
    // v3 only.
    expect(RunSchema.safeParse({ ...own, v: 2 }).success).toBe(false);
  });

  it('M4: siblings ready at the same moment are decided in the trace\'s order (as live), not by their recorded starts', () => {
    const llm = (id: string, deps: string[], startMs: number) => llmOp(id, deps, startMs, 500);
    const run = RunSchema.parse({
      v: 3,
      runId: 'fan',
      tenant: 't',
      workflow: 'w',
      startUnixMs: 0,
      // b is first in the trace but started later than c (dispatch order under load).
      operations: [llm('a', [], 0), llm('b', ['a'], 540), llm('c', ['a'], 510)],
      opportunities: [
        { from: 'a', to: 'b', type: 'passthrough', guess: 'x', matched: true },
        { from: 'a', to: 'c', type: 'passthrough', guess: 'x', matched: true },
      ],
    });
    const [r] = byPolicy(replay([run], { policies: ['always'], dial, prices, keepDecisions: true }), 'always');
    expect(r!.decisions!.map((d) => d.node)).toEqual(['b', 'c']);
    // c is judged with b launched a moment before (its attempt starts b's 40 ms gap later): the
    // run's makespan then waits for c alone, so c saves time too; were b seen waiting, c's ΔT would be 0.
    expect(r!.decisions![1]!.decision.deltaTSec).toBeGreaterThan(0.3);
  });

  it('M5: posteriors learn online in time order, from every outcome (shadow outcomes included)', () => {
    const runs = [chain('r0', 0, true), chain('r1', 10, true), chain('r2', 20, false), chain('r3', 30, true)];
    const result = replay([...runs].reverse(), { policies: ['never'], dial, prices, keepDecisions: true });
    const posts = byPolicy(result, 'never').map((r) => r.decisions![0]!.decision.posteriors[0]!);
    const prior = priorFor('router_k_way', 4);
    expect(posts.map((p) => [p.a, p.b])).toEqual([
      [prior.a, prior.b],
      [prior.a + 1, prior.b],
      [prior.a + 2, prior.b],
      [prior.a + 2, prior.b + 1],
    ]);
  });

  it('M2/M4: decisions use running-mean estimates of earlier runs, not the run\'s own future', () => {
    const slow = RunSchema.parse({
      ...chain('slow', 10, true),
      operations: [
        { ...chain('x', 0, true).operations[0]!, durationMs: 3000 },
        { ...chain('x', 0, true).operations[1]!, startMs: 3000, durationMs: 2000, 'gen_ai.usage.output_tokens': 100 },
      ],
    });
    const runs = [chain('first', 0, true), slow];
    const history = replay(runs, { policies: ['ev', 'always'], dial, prices, keepDecisions: true });
    const [first, second] = byPolicy(history, 'ev').map((r) => r.decisions![0]!);
    // First run: no history, its recorded values; second: the first run's (1 s upstream, 3 s draft, 300 tokens).
    // ΔT = E[min(T_up, T_down)] (M4): just under min(1 s, 3 s) for both (the second from the
    // first run's one-sample class histograms, whose bins are ~19% wide).
    expect(first!.input.deltaTSec).toBeGreaterThan(0.95);
    expect(first!.input.deltaTSec).toBeLessThan(1);
    expect(second!.input.deltaTSec).toBeGreaterThan(0.85);
    expect(second!.input.deltaTSec).toBeLessThanOrEqual(1.1);
    const gpt4o = prices.rates('openai', 'gpt-4o')!;
    expect(second!.input.cSpecUsd).toBeCloseTo(llmCostUsd(gpt4o, { inputTokens: 2000, cachedInputTokens: 0, outputTokens: 300 }), 12);
    const perfect = replay(runs, { policies: ['ev'], dial, prices, keepDecisions: true, estimates: 'recorded' });
    const p2 = byPolicy(perfect, 'ev')[1]!.decisions![0]!;
    // E[min(3 s upstream, 2 s draft)]: under 2 s, well above the 1 s the history gave.
    expect(p2.input.deltaTSec).toBeGreaterThan(1.7);
    expect(p2.input.deltaTSec).toBeLessThan(2);
    expect(p2.input.cSpecUsd).toBeCloseTo(llmCostUsd(gpt4o, { inputTokens: 2000, cachedInputTokens: 0, outputTokens: 100 }), 12);
    // The realized schedule uses the real durations: the hit starts the draft at 0, classify still takes 3 s.
    expect(byPolicy(history, 'always')[1]!.durationMs).toBe(3000);
  });

  it('a guess produced by a model is priced (M10) and the downstream cannot start before it is available', () => {
    const base = chain('g', 0, true);
    const run = RunSchema.parse({
      ...base,
      opportunities: [
        {
          ...base.opportunities[0]!,
          guesser: { 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', durationMs: 400, 'gen_ai.usage.input_tokens': 500, 'gen_ai.usage.output_tokens': 2, costNanoUsd: 90_000 },
        },
      ],
    });
    const result = replay([run], { policies: ['never', 'always'], dial, prices, keepDecisions: true });
    const [r] = byPolicy(result, 'always');
    expect(r!.durationMs).toBe(3400);
    expect(r!.costNano).toBe(byPolicy(result, 'never')[0]!.costNano + 90_000);
    expect(r!.decisions![0]!.input.predictorUsd).toBeCloseTo(90_000e-9, 15);
  });

  it('M10: a bought guess is sunk: booked as guess spend on a hit and on a miss alike, never as waste (issue 9 item 5)', () => {
    const withGuess = (id: string, matched: boolean) => {
      const base = chain(id, 0, matched);
      return RunSchema.parse({
        ...base,
        opportunities: [
          {
            ...base.opportunities[0]!,
            guesser: { 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', durationMs: 400, 'gen_ai.usage.input_tokens': 500, 'gen_ai.usage.output_tokens': 2, costNanoUsd: 90_000 },
          },
        ],
      });
    };
    const result = replay([withGuess('h', true), withGuess('m', false)], { policies: ['never', 'always'], dial, prices, keepDecisions: true });
    const [hit, miss] = byPolicy(result, 'always');
    const [neverHit, neverMiss] = byPolicy(result, 'never');
    expect(hit!.guessNano).toBe(90_000);
    expect(miss!.guessNano).toBe(90_000);
    expect(hit!.wasteNano).toBe(0);
    expect(miss!.costNano).toBe(neverMiss!.costNano + miss!.wasteNano + 90_000);
    expect(hit!.costNano).toBe(neverHit!.costNano + 90_000);
    expect(neverHit!.guessNano).toBe(0);
    // Stage 2 (launch on the bought guess) does not count its price; stage 1 (buy) does.
    const ev = replay([withGuess('h', true)], { policies: ['ev'], dial: { alpha: 1, lambdaUsdPerSec: 10 }, prices, keepDecisions: true });
    const rec = byPolicy(ev, 'ev')[0]!.decisions![0]!;
    expect(rec.decision.action).toBe('SPECULATE');
    expect(rec.input.predictorUsd ?? 0).toBe(0);
    expect(byPolicy(ev, 'ev')[0]!.guessNano).toBe(90_000);
  });

  it('M4 joins: P and the hit cover only upstreams still pending at the speculative start (issue 9 item 4)', () => {
    // fast (0-200 ms) and slow (0-3000 ms) both feed join; fast has ended when the guess for slow
    // is available (at 400 ms, a guesser's latency), so only slow's edge is guessed.
    const run = RunSchema.parse({
      v: 1,
      runId: 'join',
      tenant: 't',
      workflow: 'join',
      startUnixMs: 0,
      operations: [
        { id: 'fast', kind: 'tool', 'gen_ai.tool.name': 'lookup', startMs: 0, durationMs: 200, costNanoUsd: 0 },
        { id: 'slow', kind: 'tool', 'gen_ai.tool.name': 'search', startMs: 0, durationMs: 3000, costNanoUsd: 0 },
        { id: 'join', kind: 'tool', 'gen_ai.tool.name': 'merge', effects: 'none', dependencies: ['fast', 'slow'], startMs: 3000, durationMs: 1000, costNanoUsd: 1000 },
      ],
      opportunities: [
        { from: 'fast', to: 'join', type: 'lookup', guess: 'x', matched: false },
        {
          from: 'slow',
          to: 'join',
          type: 'lookup',
          guess: 'y',
          matched: true,
          guesser: { 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', durationMs: 400, 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 1, costNanoUsd: 10 },
        },
      ],
    });
    const result = replay([run], { policies: ['always'], dial, prices, keepDecisions: true });
    const r = byPolicy(result, 'always')[0]!;
    const rec = r.decisions![0]!;
    // One pending edge (slow's): P is its posterior alone, and the miss on fast's ended edge does not count.
    expect(rec.input.edges).toHaveLength(1);
    expect(rec.hit).toBe(true);
    expect(r.durationMs).toBe(3000);
  });

  it('irreversible downstreams are never speculated, even by the oracle (M6)', () => {
    const base = chain('irr', 0, true);
    const run = RunSchema.parse({
      ...base,
      operations: [base.operations[0], { id: 'draft', kind: 'tool', 'gen_ai.tool.name': 'charge_card', dependencies: ['classify'], startMs: 1000, durationMs: 300 }],
    });
    const result = replay([run], { policies: POLICIES, dial: { alpha: 1, lambdaUsdPerSec: 1 }, prices, keepDecisions: true });
    for (const p of result.policies) {
      expect(p.runs[0]!.speculations).toBe(0);
      if (p.policy !== 'never') expect(p.runs[0]!.decisions![0]!.decision.reason).toBe('inadmissible');
    }
  });
});

// Each test below replays nine traces under several policies with the full timing analysis: about
// 40 s on an idle 2-core machine, more beside other test files. A deterministic computation, not a
// wait: the timeout only has to cover a loaded machine.
const HEAVY = { timeout: 240_000 };

describe('policy invariants on every archetype and on tau-bench', () => {
  const traces = (): Array<[string, Run[]]> => [['tau-bench', tau], ...ARCHETYPES.map((a): [string, Run[]] => [a.name, a.generate({ seed: 3, runs: 150 })])];

  it('never is slowest, the oracle fastest and free of waste, always wastes most (M0, M11)', HEAVY, () => {
    for (const [name, runs] of traces()) {
      const result = replay(runs, { policies: POLICIES, dial, prices, keepDecisions: true });
      const never = byPolicy(result, 'never');
      const oracle = byPolicy(result, 'oracle');
      for (const p of result.policies)
        p.runs.forEach((r, k) => {
          expect(r.durationMs, `${name} ${p.policy}`).toBeLessThanOrEqual(never[k]!.durationMs + 1e-9);
          expect(oracle[k]!.durationMs, `${name} ${p.policy}`).toBeLessThanOrEqual(r.durationMs + 1e-9);
        });
      expect(oracle.every((r) => r.wasteNano === 0 && r.misses === 0)).toBe(true);
      // Over the nodes none of whose upstreams is speculable: deeper down, which nodes are decided
      // at all depends on the upstream's speculation (M8 cascades), so `always` need not lead there.
      const speculable = new Set(runs.flatMap((r) => r.opportunities.map((o) => `${r.runId}/${o.to}`)));
      const firstLevel = (d: ReplayDecision) =>
        runs.find((r) => r.runId === d.runId)!.operations.find((o) => o.id === d.node)!.dependencies.every((u) => !speculable.has(`${d.runId}/${u}`));
      const decs = (p: PolicyName) => byPolicy(result, p).flatMap((r) => r.decisions!.filter(firstLevel));
      const waste = (p: PolicyName) => decs(p).reduce((s, d) => s + d.wasteNano, 0);
      const specs = (p: PolicyName) => decs(p).filter((d) => d.speculated).length;
      for (const p of ['threshold', 'ev'] as const) {
        expect(waste('always'), `${name} always vs ${p}`).toBeGreaterThanOrEqual(waste(p));
        expect(specs('always'), `${name} always vs ${p}`).toBeGreaterThanOrEqual(specs(p));
      }
      const s = summarize(result);
      const share = s.find((x) => x.policy === 'ev')!.oracleShareCaptured;
      if (share !== null) expect(share).toBeLessThanOrEqual(1 + 1e-9);
    }
  });

  it('every EV decision is the core decide() on its recorded inputs, and the policy follows its action', HEAVY, () => {
    for (const [name, runs] of traces()) {
      const result = replay(runs, { policies: ['ev', 'threshold'], dial, prices, keepDecisions: true });
      const evDecisions = byPolicy(result, 'ev').flatMap((r) => r.decisions ?? []);
      expect(evDecisions.length, name).toBeGreaterThan(0);
      for (const d of evDecisions) {
        expect(decide(d.input), name).toEqual(d.decision);
        expect(d.speculated).toBe(d.decision.action === 'SPECULATE');
      }
      for (const d of byPolicy(result, 'threshold').flatMap((r) => r.decisions ?? []))
        expect(d.speculated).toBe(d.decision.reason !== 'inadmissible' && d.decision.p >= 0.5);
    }
  });

  it('M4: replayed decisions are the project\'s decision records, with outcomes joined by decision id', () => {
    const runs = ARCHETYPES.find((a) => a.name === 'code-agent')!.generate({ seed: 2, runs: 60 });
    const result = replay(runs, { policies: ['ev'], dial, prices, keepDecisions: true });
    const byId = new Map(runs.map((r) => [r.runId, r]));
    let outcomes = 0;
    for (const r of byPolicy(result, 'ev'))
      for (const d of r.decisions!) {
        const { record, outcome } = toDecisionRecord(byId.get(r.runId)!, 'ev', d);
        expect(DecisionRecordSchema.parse(record)).toEqual(record);
        expect(record.action).toBe(d.decision.action);
        expect(record.p).toBe(d.decision.p);
        if (outcome !== null) {
          outcomes++;
          expect(outcome.decisionId).toBe(record.decisionId);
          expect(outcome.kind).toBe(d.hit ? 'hit' : 'miss');
          expect(outcome.wasteUsd).toBeCloseTo(d.wasteNano / 1e9, 15);
        }
      }
    expect(outcomes).toBe(byPolicy(result, 'ev').reduce((s, r) => s + r.speculations, 0));
  });

  it('the EV rule speculates more as λ or α grows (M3)', () => {
    const runs = ARCHETYPES.find((a) => a.name === 'retrieval-answer')!.generate({ seed: 5, runs: 200 });
    const specs = (alpha: number, lambda: number) =>
      byPolicy(replay(runs, { policies: ['ev'], dial: { alpha, lambdaUsdPerSec: lambda }, prices }), 'ev').reduce((s, r) => s + r.speculations, 0);
    const lambdas = [0.0001, 0.001, 0.01, 0.1].map((l) => specs(0.5, l));
    for (let k = 1; k < lambdas.length; k++) expect(lambdas[k]!).toBeGreaterThanOrEqual(lambdas[k - 1]!);
    expect(lambdas[3]!).toBeGreaterThan(lambdas[0]!);
    expect(specs(1, 0.001)).toBeGreaterThanOrEqual(specs(0, 0.001));
  });

  it('M11 headroom: little on the tau-bench agent loop, real on the extraction pipeline', () => {
    const tauRoom = headroom(replay(tau, { policies: POLICIES, dial, prices }))!;
    expect(tauRoom.oracleSavingPct).toBeLessThan(5);
    expect(tauRoom.verdict.startsWith('little headroom')).toBe(true);
    const ex = ARCHETYPES.find((a) => a.name === 'extraction-pipeline')!.generate({ seed: 5, runs: 200 });
    const exRoom = headroom(replay(ex, { policies: POLICIES, dial, prices }))!;
    expect(exRoom.oracleSavingPct).toBeGreaterThan(15);
    expect(exRoom.evSavingMs).toBeGreaterThan(0);
  });

  it('refits the type priors from the data (core refitPrior)', () => {
    const result = replay(tau, { policies: ['never'], dial, prices });
    const toolArgs = result.refit.find((r) => r.type === 'tool_args')!;
    expect(toolArgs.outcomes).toBe(1023);
    expect(toolArgs.prior.a / (toolArgs.prior.a + toolArgs.prior.b)).toBeCloseTo(469 / 1023, 3);
    expect(toolArgs.defaultPrior).toEqual({ a: 2, b: 5 });
  });

  it('names the run and op when a model has no price', () => {
    const run = chain('u', 0, true);
    expect(() => replay([run], { policies: ['never'], dial, prices: new ConfiguredPriceTable() })).toThrow(/run u op classify: unknown model/);
  });
});

describe('M9.5 replay runs the live drift detector and kill', () => {
  it('kills a class whose hit rate drops from 0.9 to 0.1, stops speculating on it, and re-learns after the cooldown', () => {
    const rnd = mulberry32(12345);
    // 300 runs at 0.9, then 100 at 0.1; a run every 10 s; the cooldown is 200 s (20 runs).
    const runs = Array.from({ length: 400 }, (_, i) => chain(`r${i}`, i * 10_000, rnd() < (i < 300 ? 0.9 : 0.1)));
    const res = replay(runs, { policies: ['ev'], dial: { alpha: 1, lambdaUsdPerSec: 10 }, prices: loadSnapshotPriceTable(), keepDecisions: true, calibration: { cooldownMs: 200_000, nMin: 30 } });
    expect(res.kills.length).toBeGreaterThanOrEqual(1);
    const first = res.kills[0]!;
    const at = Number(first.runId.slice(1));
    expect(at).toBeGreaterThanOrEqual(300);
    expect(at - 300).toBeLessThanOrEqual(25);
    expect(first.reason).toMatch(/^drift: tail test/);
    const ev = byPolicy(res, 'ev');
    // Killed for the cooldown, then WAIT `stage` while the class re-learns in shadow.
    const during = ev.slice(at + 1, at + 20);
    expect(during.every((r) => r.speculations === 0)).toBe(true);
    expect(ev.slice(at + 1, at + 20).flatMap((r) => r.decisions ?? []).every((d) => d.decision.reason === "killed")).toBe(true);
    const after = ev.slice(at + 21, at + 40).flatMap((r) => r.decisions ?? []);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((d) => d.decision.reason === "stage" || d.decision.reason === "killed")).toBe(true);
  });
});

describe('the calibrated yardstick: classes with a known P', () => {
  it('decides with exactly the known P, learns nothing and kills nothing', () => {
    const rnd = mulberry32(7);
    const runs = Array.from({ length: 200 }, (_, i) => chain(`k${i}`, i * 10_000, rnd() < (i < 100 ? 0.9 : 0.1)));
    const res = replay(runs, { policies: ['ev'], dial, prices, keepDecisions: true, knownP: () => 0.6 });
    expect(res.kills).toEqual([]);
    const ps = byPolicy(res, 'ev').flatMap((r) => r.decisions ?? []).map((d) => d.decision.p);
    expect(ps).toHaveLength(200);
    for (const p of ps) expect(p).toBeCloseTo(0.6, 6);
  });
});
