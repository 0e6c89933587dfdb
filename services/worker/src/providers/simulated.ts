/**
 * The simulated provider (a product feature: the default when no key is configured, and what
 * tests, demos and benchmarks run on). Deterministic and seeded:
 * - Output: `req.simulate.output` if given; else one of `req.simulate.outcomes` drawn by weight
 *   with a PRNG seeded by `req.seed` alone (so a speculative and an authoritative attempt of the
 *   same node in the same run draw the same outcome: the draw models the world, not the
 *   attempt); else pseudo-text seeded by (seed, prompt) of about 0.6·maxTokens tokens. Any
 *   output is cut at maxTokens (finishReason 'length').
 * - Latency: token i (0-based) arrives at ttftMs + i/tokensPerSec and `done` at
 *   ttftMs + outputTokens/tokensPerSec, the core's `expectedLlmDurationMs`; profile from the
 *   `LatencyProfiles` function (default: the core's `latencyProfile`), overridden by
 *   `req.simulate.ttftMs/tokensPerSec`, all multiplied by `timeScale`.
 * - Usage: real o200k_base token counts; cachedInputTokens is a configured share of the input.
 * - Abort (M8): stops at once and throws ProviderStreamAbortedError with the text streamed so
 *   far and usage = input + the output tokens actually streamed (usageEstimated: true).
 */
import { type LlmProvider, type LlmRequest, type LlmStreamEvent, type TokenUsage, ValidationError } from '@gambit/shared';
import { abortableSleep } from './abortable-sleep.js';
import { ProviderStreamAbortedError } from './errors.js';
import { defaultLatencyProfiles, type LatencyProfiles } from './latency.js';
import { drawWeighted, seededRng } from './prng.js';
import { pseudoText } from './pseudo-text.js';
import { countInputTokens, decodeTokens, encodeTokens } from './tokens.js';

export interface SimulatedProviderOptions {
  /** Provider name reported by `name` (default `simulated`). */
  readonly name?: string;
  readonly latencyProfiles?: LatencyProfiles;
  /** Multiplies every delay: 0.01 runs 100x faster (tests), 0 has no delay at all. Default 1. */
  readonly timeScale?: number;
  /** Share of input tokens reported as served from the prompt cache, in [0, 1]. Default 0. */
  readonly cachedInputShare?: number;
  /**
   * Smallest real interval between two timer ticks (ms, default 15). At a fast pace several
   * tokens are delivered per tick in one delta, so many concurrent streams do not flood a small
   * machine with timers.
   */
  readonly minTickMs?: number;
}

/** One delta-sized piece of output: its text and the index of its last token. */
interface Piece {
  readonly text: string;
  readonly lastToken: number;
}

export interface SimulatedPlan {
  readonly text: string;
  readonly pieces: readonly Piece[];
  readonly outputTokens: number;
  readonly finishReason: 'stop' | 'length';
  readonly inputTokens: number;
  readonly cachedInputTokens: number;
  readonly ttftMs: number;
  readonly tokensPerSec: number;
}

/**
 * Splits tokens into pieces that decode to whole characters: a token that ends inside a
 * multi-byte character is held back until the token completing it arrives.
 */
function toPieces(tokens: readonly number[]): Piece[] {
  const pieces: Piece[] = [];
  let pending: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    pending.push(tokens[i]!);
    const text = decodeTokens(pending);
    if (!text.endsWith('\uFFFD') || i === tokens.length - 1) {
      pieces.push({ text, lastToken: i });
      pending = [];
    }
  }
  return pieces;
}

function validate(req: LlmRequest): void {
  const issues: { path: string; message: string }[] = [];
  const sim = req.simulate;
  if (!(req.maxTokens >= 1)) issues.push({ path: 'maxTokens', message: 'must be >= 1' });
  if (sim?.ttftMs !== undefined && !(sim.ttftMs >= 0)) issues.push({ path: 'simulate.ttftMs', message: 'must be >= 0' });
  if (sim?.tokensPerSec !== undefined && !(sim.tokensPerSec > 0)) {
    issues.push({ path: 'simulate.tokensPerSec', message: 'must be > 0' });
  }
  if (sim?.outcomes && sim.output === undefined) {
    if (sim.outcomes.length === 0) issues.push({ path: 'simulate.outcomes', message: 'must not be empty' });
    sim.outcomes.forEach((o, i) => {
      if (!(o.weight >= 0)) issues.push({ path: `simulate.outcomes[${i}].weight`, message: 'must be >= 0' });
    });
    if (!(sim.outcomes.reduce((s, o) => s + o.weight, 0) > 0)) {
      issues.push({ path: 'simulate.outcomes', message: 'weights must sum to > 0' });
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);
}

export class SimulatedProvider implements LlmProvider {
  readonly name: string;
  private readonly profiles: LatencyProfiles;
  private readonly timeScale: number;
  private readonly cachedInputShare: number;
  private readonly minTickMs: number;

  constructor(opts: SimulatedProviderOptions = {}) {
    this.name = opts.name ?? 'simulated';
    this.profiles = opts.latencyProfiles ?? defaultLatencyProfiles;
    this.timeScale = opts.timeScale ?? 1;
    this.cachedInputShare = opts.cachedInputShare ?? 0;
    this.minTickMs = opts.minTickMs ?? 15;
    if (!(this.timeScale >= 0)) throw new ValidationError([{ path: 'timeScale', message: 'must be >= 0' }]);
    if (!(this.cachedInputShare >= 0 && this.cachedInputShare <= 1)) {
      throw new ValidationError([{ path: 'cachedInputShare', message: 'must be in [0, 1]' }]);
    }
  }

  /** Everything the stream will do, computed up front (pure given the request). */
  plan(req: LlmRequest): SimulatedPlan {
    validate(req);
    const sim = req.simulate;
    const seed = req.seed ?? '';
    const maxTokens = Math.floor(req.maxTokens);
    let tokens: number[];
    let finishReason: 'stop' | 'length' = 'stop';
    let scripted: string | undefined = sim?.output;
    if (scripted === undefined && sim?.outcomes && sim.outcomes.length > 0) {
      const i = drawWeighted(
        seededRng(`outcome\u0000${seed}`),
        sim.outcomes.map((o) => o.weight),
      );
      scripted = sim.outcomes[i]!.value;
    }
    if (scripted !== undefined) {
      tokens = encodeTokens(scripted);
    } else {
      const gen = pseudoText(seededRng(`text\u0000${seed}\u0000${req.system ?? ''}\u0000${req.prompt}`), maxTokens);
      tokens = gen.tokens;
      finishReason = gen.finishReason;
    }
    if (tokens.length > maxTokens) {
      tokens = tokens.slice(0, maxTokens);
      finishReason = 'length';
    }
    const pieces = toPieces(tokens);
    const totalInput = countInputTokens(req);
    const cachedInputTokens = Math.floor(totalInput * this.cachedInputShare);
    const profile = this.profiles(req.model);
    return {
      text: pieces.map((p) => p.text).join(''),
      pieces,
      outputTokens: tokens.length,
      finishReason,
      inputTokens: totalInput - cachedInputTokens,
      cachedInputTokens,
      ttftMs: sim?.ttftMs ?? profile.ttftMs,
      tokensPerSec: sim?.tokensPerSec ?? profile.tokensPerSec,
    };
  }

  async *stream(req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmStreamEvent> {
    const plan = this.plan(req);
    const ttftMs = plan.ttftMs * this.timeScale;
    const perTokenMs = (1000 / plan.tokensPerSec) * this.timeScale;
    const start = performance.now();
    let partial = '';
    let streamedTokens = 0;
    let lastTickAt = Number.NEGATIVE_INFINITY;
    const aborted = () => {
      const usage: TokenUsage = {
        inputTokens: plan.inputTokens,
        cachedInputTokens: plan.cachedInputTokens,
        outputTokens: streamedTokens,
      };
      return new ProviderStreamAbortedError(partial, usage, true);
    };

    let next = 0;
    while (next < plan.pieces.length) {
      if (signal.aborted) throw aborted();
      const dueAt = start + ttftMs + plan.pieces[next]!.lastToken * perTokenMs;
      const now = performance.now();
      // Why the floor: at a fast pace tokens are batched per tick instead of one timer each.
      const wakeAt = Math.max(dueAt, lastTickAt + this.minTickMs);
      if (dueAt > now) await abortableSleep(wakeAt - now, signal);
      if (signal.aborted) throw aborted();
      const tickAt = performance.now();
      let text = '';
      while (next < plan.pieces.length && start + ttftMs + plan.pieces[next]!.lastToken * perTokenMs <= tickAt) {
        text += plan.pieces[next]!.text;
        streamedTokens = plan.pieces[next]!.lastToken + 1;
        next++;
      }
      // A timer may fire a fraction of a millisecond early: then nothing is due yet, wait again.
      if (text === '') continue;
      lastTickAt = tickAt;
      partial += text;
      yield { type: 'delta', text };
    }
    // The last token was due at ttft + (n-1)/tps; the call ends one token later (core formula).
    const endAt = start + ttftMs + plan.outputTokens * perTokenMs;
    const tail = endAt - performance.now();
    if (tail > 0) await abortableSleep(tail, signal);
    if (signal.aborted) throw aborted();
    yield {
      type: 'done',
      text: plan.text,
      usage: { inputTokens: plan.inputTokens, cachedInputTokens: plan.cachedInputTokens, outputTokens: plan.outputTokens },
      usageEstimated: false,
      finishReason: plan.finishReason,
    };
  }
}
