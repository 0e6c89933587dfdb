/**
 * Unit tests of the agreement benchmark's pure parts (M9 stage 1 checked against live runs):
 * the replay trace built from a paired speculation-off / speculation-on run view, and the
 * tolerance check. The live comparison itself is test/agreement/agreement.test.ts.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { compare, ratioStdErr, TOLERANCE } from './compare.mjs';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { predictFromLive, traceRun } from './predict.mjs';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { retime } from './live.mjs';

const workflow = {
  name: 'triage',
  nodes: [
    { id: 'classify', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', effects: 'none' },
    { id: 'draft', kind: 'llm', provider: 'simulated', model: 'gpt-4o', effects: 'none' },
  ],
  edges: [{ from: 'classify', to: 'draft', type: 'router_k_way', k: 4, predictor: { kind: 'most_frequent', fallback: 'billing' } }],
};

const attempt = (kind: string, startedAtMs: number, finishedAtMs: number, outputTokens: number, assumed?: Record<string, string>) => ({
  kind,
  status: 'succeeded',
  startedAtMs,
  finishedAtMs,
  usage: { inputTokens: 40, cachedInputTokens: 10, outputTokens },
  costNanoUsd: 1,
  ...(assumed ? { assumed } : {}),
});

function view(runId: string, t0: number, classifyOut: string, spec?: Record<string, string>) {
  return {
    runId,
    tenant: 't',
    createdAtMs: t0,
    finishedAtMs: t0 + 100,
    nodes: {
      classify: { output: classifyOut, attempts: [attempt('authoritative', t0 + 2, t0 + 30, 1)] },
      draft: {
        output: 'reply',
        attempts: [...(spec ? [attempt('speculative', t0 + 5, t0 + 90, 50, spec)] : []), attempt('authoritative', t0 + 33, t0 + 98, 50)],
      },
    },
  };
}

describe('agreement trace from live runs (M9 stage 1)', () => {
  it('scales attempt time back by 1/timeScale but keeps dispatch gaps as measured, keeps total and cached tokens, takes the outcome from the on run and the guess it assumed', () => {
    const off = view('r0', 1_000, 'shipping');
    const on = view('r0', 2_000, 'other', { classify: 'shipping' });
    const run = traceRun(workflow, off, on, 0.1);
    const [c, d] = run.operations;
    // classify runs 2-30 ms (wall): starts 2 ms in (a gap, unscaled), runs 28 / 0.1 = 280 ms;
    // draft starts 3 ms (unscaled) after classify's end, runs 65 / 0.1 = 650 ms.
    expect(c).toMatchObject({ id: 'classify', startMs: 2, durationMs: 280, 'gen_ai.usage.input_tokens': 50, 'gen_ai.usage.cache_read.input_tokens': 10 });
    expect(d).toMatchObject({ id: 'draft', dependencies: ['classify'], startMs: 285, durationMs: 650, 'gen_ai.usage.output_tokens': 50 });
    // The live predictor guessed "shipping" (not its fallback); the on run's real label was "other".
    expect(run.opportunities).toEqual([{ from: 'classify', to: 'draft', type: 'router_k_way', k: 4, guess: 'shipping', actual: 'other', matched: false }]);
    expect(run.startUnixMs).toBe(2_000);
    // Issue 9 item 8: the on run's missed speculative draft, as it ran on the guess (its own
    // tokens, 85 / 0.1 = 850 ms), which replay bills the miss from; the off run's classify has none.
    expect(d.speculative).toEqual({
      kind: 'llm',
      'gen_ai.provider.name': 'simulated',
      'gen_ai.request.model': 'gpt-4o',
      durationMs: 850,
      cancelled: false,
      'gen_ai.usage.input_tokens': 50,
      'gen_ai.usage.cache_read.input_tokens': 10,
      'gen_ai.usage.output_tokens': 50,
    });
    expect(c.speculative).toBeUndefined();
    expect(run.v).toBe(3);
  });

  it('without a live launch the guess is the predictor fallback, and a matching on-run output is a hit', () => {
    const run = traceRun(workflow, view('r1', 0, 'billing'), view('r1', 0, 'billing'), 1);
    expect(run.opportunities[0]).toMatchObject({ guess: 'billing', matched: true });
    expect(run.operations[1].speculative).toBeUndefined();
  });

  it('replay of the trace reproduces the off runs exactly under never (same prices, same gaps)', () => {
    const pairs = Array.from({ length: 5 }, (_, i) => ({ i, off: view(`r${i}`, i * 1000, 'billing'), on: view(`r${i}`, i * 1000 + 500, 'billing') }));
    const p = predictFromLive(workflow, pairs, 0.1, { alpha: 1, lambdaUsdPerSec: 10 });
    expect(p.meanOffSec).toBeCloseTo(0.935, 6);
    expect(p.speculations).toBe(5);
    expect(p.hits).toBe(5);
    expect(p.latencyRatio).toBeLessThan(1);
  });
});

describe('a live run re-timed at time scale 1 (retime)', () => {
  const at = (kind: string, startedAtMs: number, finishedAtMs: number, extra: Record<string, unknown> = {}) => ({ kind, status: 'succeeded', startedAtMs, finishedAtMs, ...extra });
  it('divides attempt time by the scale, keeps dispatch gaps; a speculative hit is triggered by its upstream start and confirmed by its end', () => {
    const hit = {
      runId: 'r',
      createdAtMs: 0,
      finishedAtMs: 70,
      nodes: { classify: { attempts: [at('authoritative', 10, 30)] }, draft: { source: 'speculative', attempts: [at('speculative', 15, 60, { assumed: { classify: 'billing' } })] } },
    };
    const r = retime(workflow, hit, 0.1);
    expect(r.nodes.classify).toMatchObject({ startMs: 10, durationMs: 200, confirmedMs: 210 });
    // 5 ms (wall, unscaled) after classify's start, 450 ms long; the run's 10 ms tail unscaled.
    expect(r.nodes.draft).toMatchObject({ startMs: 15, durationMs: 450, confirmedMs: 465 });
    expect(r.latencyMs).toBe(475);
  });
  it('a miss: the authoritative attempt waits for the upstream end plus its own gap; the cancelled speculation does not count', () => {
    const miss = {
      runId: 'r',
      createdAtMs: 0,
      finishedAtMs: 82,
      nodes: {
        classify: { attempts: [at('authoritative', 10, 30)] },
        draft: { source: 'authoritative', attempts: [{ ...at('speculative', 15, 31), status: 'cancelled' }, at('authoritative', 35, 80)] },
      },
    };
    const r = retime(workflow, miss, 0.1);
    expect(r.nodes.draft).toMatchObject({ startMs: 215, durationMs: 450, confirmedMs: 665 });
    expect(r.latencyMs).toBe(667);
  });
});

describe('agreement tolerance', () => {
  const measured = { latencyRatio: 0.9, usdPerRunOn: 1, usdPerRunOff: 0.9 };
  it('passes inside every tolerance and fails each one outside it', () => {
    expect(compare(measured, { latencyRatio: 0.9 + TOLERANCE.latencyRatioAbs * 0.9, usdPerRunOn: 1.1, usdPerRunOff: 0.9 }).pass).toBe(true);
    expect(compare(measured, { latencyRatio: 1.01, usdPerRunOn: 1, usdPerRunOff: 0.9 }).checks.latencyRatio).toBe(false);
    expect(compare(measured, { latencyRatio: 0.9, usdPerRunOn: 1.2, usdPerRunOff: 0.9 }).checks.usdPerRunOn).toBe(false);
    expect(compare(measured, { latencyRatio: 0.9, usdPerRunOn: 1, usdPerRunOff: 0.93 }).checks.usdPerRunOff).toBe(false);
  });
  it('the bootstrap SE of the ratio is 0 for constant runs and grows with spread', () => {
    expect(ratioStdErr([1, 1, 1], [2, 2, 2])).toBe(0);
    expect(ratioStdErr([1, 2, 1, 3], [2, 2, 2, 2])).toBeGreaterThan(0.05);
  });
});
