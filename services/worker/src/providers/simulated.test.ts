/**
 * Simulated provider (issue 3 item 2): determinism, outcome draws (M5 world model), latency
 * shape, token batching, abort with fractional usage (M8), validation.
 */
import { latencyProfile, StreamAbortedError, ValidationError } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { ProviderStreamAbortedError } from './errors.js';
import type { LatencyProfiles } from './latency.js';
import { SimulatedProvider } from './simulated.js';
import { collect } from './testing.js';
import { countTokens } from './tokens.js';

const fast: LatencyProfiles = () => ({ ttftMs: 0, tokensPerSec: 1e9 });
const base = { provider: 'simulated', model: 'sim-model', prompt: 'Classify this ticket.', maxTokens: 64 };

/** Node timers run off the event loop's cached clock and can fire ~1-2 ms early as measured
 * by performance.now(); lower bounds allow that much, never more. */
const TIMER_SLACK_MS = 3;

describe('SimulatedProvider output', () => {
  const p = new SimulatedProvider({ latencyProfiles: fast, timeScale: 0 });

  it('is deterministic: same request, same deltas, text and usage', async () => {
    const a = await collect(p, { ...base, seed: 'run1:n1' });
    const b = await collect(p, { ...base, seed: 'run1:n1' });
    expect(a.error).toBeUndefined();
    expect(a.done).toBeDefined();
    expect(b.done).toEqual(a.done);
    expect(a.deltas.join('')).toBe(a.done!.text);
    expect(a.done!.text.length).toBeGreaterThan(0);
  });

  it('pseudo-text depends on seed and prompt', () => {
    const t1 = p.plan({ ...base, seed: 's1' }).text;
    expect(p.plan({ ...base, seed: 's2' }).text).not.toBe(t1);
    expect(p.plan({ ...base, seed: 's1', prompt: 'other' }).text).not.toBe(t1);
  });

  it('pseudo-text is about 0.6 x maxTokens, never above maxTokens, cut with finishReason length', () => {
    const maxTokens = 200;
    let sum = 0;
    let cut = 0;
    const n = 400;
    for (let i = 0; i < n; i++) {
      const plan = p.plan({ ...base, maxTokens, seed: `seed-${i}` });
      expect(plan.outputTokens).toBeLessThanOrEqual(maxTokens);
      expect(plan.outputTokens).toBe(countTokens(plan.text));
      if (plan.finishReason === 'length') {
        cut++;
        expect(plan.outputTokens).toBe(maxTokens);
      }
      sum += plan.outputTokens;
    }
    const mean = sum / n;
    expect(mean).toBeGreaterThan(0.5 * maxTokens);
    expect(mean).toBeLessThan(0.7 * maxTokens);
    // log-normal(σ=0.35) around 0.6: P(target > max) ≈ 7%
    expect(cut).toBeGreaterThan(0);
    expect(cut).toBeLessThan(n * 0.2);
  });

  it('scripted output is returned exactly, with real token counts', async () => {
    const output = 'Routed to billing. Héllo 日本語 👍🏽 done.';
    const system = 'You are a router.';
    const r = await collect(p, { ...base, system, simulate: { output } });
    expect(r.done!.text).toBe(output);
    expect(r.deltas.join('')).toBe(output);
    expect(r.done!.finishReason).toBe('stop');
    expect(r.done!.usageEstimated).toBe(false);
    expect(r.done!.usage).toEqual({
      inputTokens: countTokens(system) + countTokens(base.prompt),
      cachedInputTokens: 0,
      outputTokens: countTokens(output),
    });
  });

  it('scripted output longer than maxTokens is cut at maxTokens (finishReason length)', async () => {
    const output = 'one two three four five six seven eight nine ten eleven twelve';
    const r = await collect(p, { ...base, maxTokens: 5, simulate: { output } });
    expect(r.done!.finishReason).toBe('length');
    expect(r.done!.usage.outputTokens).toBe(5);
    expect(output.startsWith(r.done!.text)).toBe(true);
  });

  it('reports a configured deterministic cached share of the input', () => {
    const cached = new SimulatedProvider({ latencyProfiles: fast, timeScale: 0, cachedInputShare: 0.5 });
    const prompt = 'word '.repeat(101);
    const plan = cached.plan({ ...base, prompt });
    const total = countTokens(prompt);
    expect(plan.cachedInputTokens).toBe(Math.floor(total / 2));
    expect(plan.inputTokens + plan.cachedInputTokens).toBe(total);
  });
});

describe('SimulatedProvider outcome draws (M5)', () => {
  const p = new SimulatedProvider({ latencyProfiles: fast, timeScale: 0 });
  const outcomes = [
    { value: 'billing', weight: 6 },
    { value: 'tech', weight: 3 },
    { value: 'sales', weight: 1 },
  ];

  it('depends on the seed only: a speculative attempt with another prompt draws the same outcome', () => {
    for (let i = 0; i < 50; i++) {
      const seed = `run-${i}:router`;
      const authoritative = p.plan({ ...base, seed, prompt: 'real input', simulate: { outcomes } });
      const speculative = p.plan({ ...base, seed, prompt: 'guessed input', simulate: { outcomes } });
      expect(speculative.text).toBe(authoritative.text);
    }
  });

  it('draw frequencies match the weights within sampling error over many seeds', () => {
    const n = 3000;
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const v = p.plan({ ...base, seed: `run-${i}:router`, simulate: { outcomes } }).text;
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    for (const o of outcomes) {
      const expected = o.weight / 10;
      const observed = (counts.get(o.value) ?? 0) / n;
      const sigma = Math.sqrt((expected * (1 - expected)) / n);
      expect(Math.abs(observed - expected)).toBeLessThan(4 * sigma);
    }
    expect([...counts.keys()].sort()).toEqual(['billing', 'sales', 'tech']);
  });

  it('never draws a zero-weight outcome', () => {
    for (let i = 0; i < 300; i++) {
      const v = p.plan({ ...base, seed: `z${i}`, simulate: { outcomes: [...outcomes, { value: 'never', weight: 0 }] } }).text;
      expect(v).not.toBe('never');
    }
  });

  it('output beats outcomes', () => {
    expect(p.plan({ ...base, simulate: { output: 'fixed', outcomes } }).text).toBe('fixed');
  });

  it('rejects invalid simulate settings with ValidationError naming the field', () => {
    const bad = [
      { simulate: { outcomes: [] } },
      { simulate: { outcomes: [{ value: 'a', weight: 0 }] } },
      { simulate: { outcomes: [{ value: 'a', weight: -1 }] } },
      { simulate: { tokensPerSec: 0 } },
      { simulate: { ttftMs: -5 } },
      { maxTokens: 0 },
    ];
    for (const b of bad) {
      expect(() => p.plan({ ...base, ...b })).toThrow(ValidationError);
    }
  });
});

describe('SimulatedProvider latency shape', () => {
  // Profiles in "model time"; timeScale 0.05 turns 6 s into 300 ms of real time.
  const profiles: LatencyProfiles = (model) =>
    model === 'slow' ? { ttftMs: 6000, tokensPerSec: 20 } : { ttftMs: 200, tokensPerSec: 400 };
  const p = new SimulatedProvider({ latencyProfiles: profiles, timeScale: 0.05, minTickMs: 5 });
  const output = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi';

  it('waits about ttft before the first token and then paces tokens; slow models take longer', async () => {
    const [slow, quick] = await Promise.all([
      collect(p, { ...base, model: 'slow', simulate: { output } }),
      collect(p, { ...base, model: 'quick', simulate: { output } }),
    ]);
    const n = countTokens(output);
    // slow: first token at 6000*0.05 = 300 ms, token i at (6000 + i/20*1000) * 0.05 ms
    expect(slow.deltaAtMs[0]!).toBeGreaterThanOrEqual(300 - TIMER_SLACK_MS);
    // and done at the core's duration formula: ttft + 1000·n/tps
    expect(slow.elapsedMs).toBeGreaterThanOrEqual((6000 + (n / 20) * 1000) * 0.05 - TIMER_SLACK_MS);
    // quick: first token at 10 ms, whole call ≈ 10 + (n-1)*0.125 ms
    expect(quick.deltaAtMs[0]!).toBeGreaterThanOrEqual(10 - TIMER_SLACK_MS);
    expect(quick.elapsedMs).toBeLessThan(slow.deltaAtMs[0]!);
    // slow streams its tokens over time: several deltas, the last one no earlier than its
    // scheduled time (lower bounds only: a loaded machine can delay timers, never advance them)
    expect(slow.deltas.length).toBeGreaterThan(3);
    expect(slow.deltaAtMs.at(-1)!).toBeGreaterThanOrEqual((6000 + ((n - 1) / 20) * 1000) * 0.05 - TIMER_SLACK_MS);
  });

  it('defaults to the shared core latency profiles (same table as the planner)', () => {
    const def = new SimulatedProvider();
    for (const model of ['gpt-4o', 'claude-haiku-4-5', 'unknown-model']) {
      const plan = def.plan({ ...base, model });
      expect({ ttftMs: plan.ttftMs, tokensPerSec: plan.tokensPerSec }).toEqual(latencyProfile(model));
    }
  });

  it('req.simulate.ttftMs and tokensPerSec override the profile', async () => {
    const r = await collect(p, { ...base, model: 'slow', simulate: { output, ttftMs: 0, tokensPerSec: 100000 } });
    // the 'slow' profile alone would take 300 ms before the first token
    expect(r.elapsedMs).toBeLessThan(250);
    expect(r.deltas.length).toBeLessThanOrEqual(2);
    expect(r.done!.text).toBe(output);
  });

  it('batches many tokens per timer tick when the pace is fast', async () => {
    const batching = new SimulatedProvider({ latencyProfiles: () => ({ ttftMs: 0, tokensPerSec: 2000 }), timeScale: 1, minTickMs: 20 });
    const long = 'word '.repeat(400);
    const r = await collect(batching, { ...base, maxTokens: 1000, simulate: { output: long } });
    // 400 tokens over ~200 ms, at most one tick per 20 ms → about 10 deltas, not 400
    expect(r.done!.usage.outputTokens).toBe(countTokens(long));
    expect(r.deltas.length).toBeLessThan(30);
    expect(r.deltas.join('')).toBe(long);
  });
});

describe('SimulatedProvider abort (M8 fractional waste)', () => {
  const p = new SimulatedProvider({ latencyProfiles: () => ({ ttftMs: 20, tokensPerSec: 100 }), timeScale: 1, minTickMs: 5 });
  const output = 'token '.repeat(100);

  it('aborts mid-stream promptly with the partial text and its token count', async () => {
    const ac = new AbortController();
    let abortedAt = 0;
    const r = await collect(p, { ...base, maxTokens: 500, simulate: { output } }, ac.signal, (count) => {
      if (count === 3) {
        abortedAt = performance.now();
        ac.abort();
      }
    });
    const stoppedAt = performance.now();
    expect(r.done).toBeUndefined();
    expect(r.error).toBeInstanceOf(StreamAbortedError);
    expect(r.error).toBeInstanceOf(ProviderStreamAbortedError);
    const err = r.error as ProviderStreamAbortedError;
    expect(err.code).toBe('ABORTED');
    expect(err.partialText).toBe(r.deltas.join(''));
    expect(output.startsWith(err.partialText)).toBe(true);
    expect(err.usage.outputTokens).toBe(countTokens(err.partialText));
    expect(err.usage.outputTokens).toBeGreaterThan(0);
    expect(err.usage.outputTokens).toBeLessThan(countTokens(output));
    expect(err.usage.inputTokens).toBe(countTokens(base.prompt));
    expect(err.usageEstimated).toBe(true);
    expect(stoppedAt - abortedAt).toBeLessThan(50);
  });

  it('aborts during time-to-first-token without waiting for the timer', async () => {
    const slow = new SimulatedProvider({ latencyProfiles: () => ({ ttftMs: 60_000, tokensPerSec: 10 }) });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const r = await collect(slow, { ...base, simulate: { output } }, ac.signal);
    expect(r.error).toBeInstanceOf(ProviderStreamAbortedError);
    expect((r.error as ProviderStreamAbortedError).partialText).toBe('');
    expect((r.error as ProviderStreamAbortedError).usage.outputTokens).toBe(0);
    expect(r.elapsedMs).toBeLessThan(1000);
  });

  it('an already-aborted signal throws before any output', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await collect(p, { ...base, simulate: { output } }, ac.signal);
    expect(r.deltas).toEqual([]);
    expect(r.error).toBeInstanceOf(ProviderStreamAbortedError);
  });
});

describe('SimulatedProvider edge cases', () => {
  it('an empty scripted output still waits ttft and reports zero output tokens', async () => {
    const p = new SimulatedProvider({ latencyProfiles: () => ({ ttftMs: 40, tokensPerSec: 10 }) });
    const r = await collect(p, { ...base, simulate: { output: '' } });
    expect(r.deltas).toEqual([]);
    expect(r.done!.text).toBe('');
    expect(r.done!.usage.outputTokens).toBe(0);
    expect(r.elapsedMs).toBeGreaterThanOrEqual(40 - TIMER_SLACK_MS);
  });

  it('special-token strings in the prompt are counted as text, not rejected', async () => {
    const p = new SimulatedProvider({ timeScale: 0 });
    const r = await collect(p, { ...base, prompt: 'quote <|endoftext|> literally', simulate: { output: 'ok' } });
    expect(r.error).toBeUndefined();
    expect(r.done!.usage.inputTokens).toBe(countTokens('quote <|endoftext|> literally'));
  });
});
