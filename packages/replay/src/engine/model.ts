/**
 * A recorded run compiled for replay: operations in topological order with their recorded
 * durations, the gap each waited after its last dependency (queueing, think time: replayed
 * unchanged), their cost in integer nano-dollars (recorded, or priced with the price table, M2),
 * what a speculative attempt of each would cost if cancelled early (M8; from the attempt's own
 * operation when the trace records it, issue 9 item 8), and the opportunities grouped by their
 * downstream node.
 */
import {
  latencyProfile,
  costAtUsd,
  llmCostUsd,
  type ModelProfiles,
  type ModelRates,
  type PriceTable,
  type SpeculativeAttempt,
  UnknownModelError,
  usdToNano,
} from '@gambit/shared';
import { type Guesser, type Operation, type Opportunity, opEffects, type Run, type SpeculativeOperation } from '../trace.js';

export interface OpModel {
  readonly op: Operation;
  readonly index: number;
  readonly deps: readonly number[];
  /** Recorded start minus the end of its last dependency (or its start, for a source), ms. */
  readonly gapMs: number;
  readonly durationMs: number;
  readonly costNano: number;
  /** Speculative attempt of this op as the waste model sees it (LLM with known rates only). */
  readonly attempt?: SpeculativeAttempt;
  /** A tool's per-call price, dollars (spent in full by a speculative call). */
  readonly toolUsd: number;
  readonly admissible: boolean;
  /** What a missed speculative attempt of this op is billed from (issue 9 item 8). */
  readonly miss: MissModel;
}

/**
 * The bill of a missed speculative attempt of an operation, cancelled `elapsedMs` after its
 * start (M8): from the attempt's own operation (`speculative` in the trace: what ran on the
 * guess) when recorded, else from the operation that finally ran, on the assumption that the
 * attempt on the guess would have run the same operation (same model or tool, prompt size and
 * output).
 */
export interface MissModel {
  readonly source: 'speculative' | 'recorded';
  /** The attempt had it run to its end (the cap of the bill), nano-dollars. */
  readonly fullNano: number;
  /** LLM streaming model (input in full, output streamed after the first token); none: billed in full. */
  readonly attempt?: SpeculativeAttempt;
  /** How long the attempt runs when not cancelled, ms. */
  readonly durationMs: number;
}

/** Nano-dollars a missed attempt costs when cancelled `elapsedMs` after its start (0 when never started). */
export function missCostNano(miss: MissModel, elapsedMs: number): number {
  if (!(elapsedMs > 0)) return 0;
  return miss.attempt === undefined ? miss.fullNano : Math.min(usdToNano(costAtUsd(miss.attempt, elapsedMs)), miss.fullNano);
}

export interface RunModel {
  readonly run: Run;
  /** Topological order (ties by recorded start). */
  readonly ops: readonly OpModel[];
  readonly byId: ReadonlyMap<string, OpModel>;
  /** Opportunities keyed by downstream op id. */
  readonly oppsByTarget: ReadonlyMap<string, readonly Opportunity[]>;
  readonly recordedDurationMs: number;
  readonly recordedCostNano: number;
}

export interface ModelContext {
  readonly prices: PriceTable;
  readonly profiles?: ModelProfiles;
}

function ratesOrThrow(prices: PriceTable, provider: string, model: string, where: string): ModelRates {
  const r = prices.rates(provider, model);
  if (r === undefined) throw new UnknownModelError(`${where}: unknown model "${provider}/${model}": not in the price table and no costNanoUsd recorded`);
  return r;
}

function opCostNano(op: Operation, rates: ModelRates | undefined, prices: PriceTable): number {
  if (op.costNanoUsd !== undefined) return op.costNanoUsd;
  if (op.kind === 'tool') return usdToNano(prices.toolCallUsd(op['gen_ai.tool.name'] ?? ''));
  const input = op['gen_ai.usage.input_tokens'];
  const cached = op['gen_ai.usage.cache_read.input_tokens'];
  return usdToNano(llmCostUsd(rates!, { inputTokens: input - cached, cachedInputTokens: cached, outputTokens: op['gen_ai.usage.output_tokens'] }));
}

/** Cost of producing a guess (M10), nano-dollars. */
export function guesserCostNano(g: Guesser | undefined, prices: PriceTable, where: string): number {
  if (g === undefined) return 0;
  if (g.costNanoUsd !== undefined) return g.costNanoUsd;
  const rates = ratesOrThrow(prices, g['gen_ai.provider.name'], g['gen_ai.request.model'], where);
  const cached = g['gen_ai.usage.cache_read.input_tokens'];
  return usdToNano(
    llmCostUsd(rates, { inputTokens: g['gen_ai.usage.input_tokens'] - cached, cachedInputTokens: cached, outputTokens: g['gen_ai.usage.output_tokens'] }),
  );
}

export function compileRun(run: Run, ctx: ModelContext): RunModel {
  const where = (op: Operation) => `run ${run.runId} op ${op.id}`;
  const order = topoByStart(run.operations);
  const indexOf = new Map(order.map((op, i) => [op.id, i]));
  const endOf = new Map(run.operations.map((op) => [op.id, op.startMs + op.durationMs]));
  const gaps = order.map((op) => {
    const lastDepEnd = op.dependencies.reduce((m, d) => Math.max(m, endOf.get(d) ?? 0), 0);
    return Math.max(0, op.startMs - lastDepEnd);
  });
  const ops: OpModel[] = order.map((op, i) => {
    const rates =
      op.kind === 'llm'
        ? op.costNanoUsd !== undefined
          ? ctx.prices.rates(op['gen_ai.provider.name']!, op['gen_ai.request.model']!)
          : ratesOrThrow(ctx.prices, op['gen_ai.provider.name']!, op['gen_ai.request.model']!, where(op))
        : undefined;
    const profile = op.kind === 'llm' ? latencyProfile(op['gen_ai.request.model']!, ctx.profiles) : undefined;
    const cached = op['gen_ai.usage.cache_read.input_tokens'];
    const attempt: SpeculativeAttempt | undefined =
      rates !== undefined && profile !== undefined
        ? {
            rates,
            inputTokens: op['gen_ai.usage.input_tokens'] - cached,
            cachedInputTokens: cached,
            expectedOutputTokens: op['gen_ai.usage.output_tokens'],
            ttftMs: profile.ttftMs,
            tokensPerSec: profile.tokensPerSec,
          }
        : undefined;
    const costNano = opCostNano(op, rates, ctx.prices);
    const miss: MissModel =
      op.speculative !== undefined
        ? speculativeMiss(op, op.speculative, ctx, where(op))
        : { source: 'recorded', fullNano: costNano, ...(attempt !== undefined && op.kind === 'llm' ? { attempt } : {}), durationMs: op.durationMs };
    return {
      op,
      index: i,
      deps: op.dependencies.map((d) => indexOf.get(d)!),
      gapMs: gaps[i]!,
      durationMs: op.durationMs,
      costNano,
      miss,
      ...(attempt !== undefined ? { attempt } : {}),
      toolUsd: op.kind === 'tool' ? ctx.prices.toolCallUsd(op['gen_ai.tool.name'] ?? '') : 0,
      admissible: opEffects(op) !== 'irreversible',
    };
  });
  const oppsByTarget = new Map<string, Opportunity[]>();
  for (const o of run.opportunities) {
    const list = oppsByTarget.get(o.to) ?? [];
    list.push(o);
    oppsByTarget.set(o.to, list);
  }
  let recordedDurationMs = 0;
  for (const op of run.operations) recordedDurationMs = Math.max(recordedDurationMs, op.startMs + op.durationMs);
  return {
    run,
    ops,
    byId: new Map(ops.map((m) => [m.op.id, m])),
    oppsByTarget,
    recordedDurationMs,
    recordedCostNano: ops.reduce((s, m) => s + m.costNano, 0),
  };
}

/**
 * The miss model from the attempt's own operation (issue 9 item 8). An LLM attempt bills its
 * whole input and the output it streamed: linearly from its first token (recorded, else the
 * model's latency profile; a cancelled attempt that produced nothing had not reached it) to its
 * end, at its own recorded rate (else the profile's). A cancelled recording tells only what it
 * consumed by its cancellation: past it the output goes on at that rate up to the larger of what
 * it recorded and the finally-run operation's output. A tool attempt costs its full price.
 */
function speculativeMiss(op: Operation, spec: SpeculativeOperation, ctx: ModelContext, where: string): MissModel {
  if (spec.kind === 'tool') {
    const fullNano = spec.costNanoUsd ?? usdToNano(ctx.prices.toolCallUsd(spec['gen_ai.tool.name'] ?? ''));
    return { source: 'speculative', fullNano, durationMs: spec.durationMs };
  }
  const provider = spec['gen_ai.provider.name']!;
  const model = spec['gen_ai.request.model']!;
  const cached = spec['gen_ai.usage.cache_read.input_tokens'];
  const input = spec['gen_ai.usage.input_tokens'] - cached;
  const out = spec['gen_ai.usage.output_tokens'];
  const capTokens = spec.cancelled ? Math.max(out, op['gen_ai.usage.output_tokens']) : out;
  const rates = spec.costNanoUsd !== undefined ? ctx.prices.rates(provider, model) : ratesOrThrow(ctx.prices, provider, model, `${where} (speculative)`);
  // Recorded cost, no rates: billed in full (nothing to prorate with).
  if (rates === undefined) return { source: 'speculative', fullNano: spec.costNanoUsd!, durationMs: spec.durationMs };
  const profile = latencyProfile(model, ctx.profiles);
  const dur = spec.durationMs;
  const ttftMs = spec.timeToFirstTokenMs ?? (spec.cancelled && out === 0 ? Math.max(profile.ttftMs, dur) : Math.min(profile.ttftMs, dur));
  const tokensPerSec = out > 0 && dur > ttftMs ? (out * 1000) / (dur - ttftMs) : profile.tokensPerSec;
  const attempt: SpeculativeAttempt = { rates, inputTokens: input, cachedInputTokens: cached, expectedOutputTokens: capTokens, ttftMs, tokensPerSec };
  const fullNano =
    spec.costNanoUsd !== undefined && !spec.cancelled
      ? spec.costNanoUsd
      : usdToNano(llmCostUsd(rates, { inputTokens: input, cachedInputTokens: cached, outputTokens: capTokens }));
  return { source: 'speculative', fullNano, attempt, durationMs: spec.cancelled ? op.durationMs : dur };
}

/**
 * Kahn's algorithm, ready nodes taken in the order they became ready in the recording (the end of
 * their last dependency; a source's start), so replay follows time; nodes ready at the same moment
 * (a fan-out's siblings) in the trace's order, as the live scheduler decides them (M4 joint
 * decisions: each sibling is judged against those decided before it).
 */
function topoByStart(ops: readonly Operation[]): Operation[] {
  const indeg = new Map(ops.map((o) => [o.id, o.dependencies.length]));
  const succ = new Map<string, Operation[]>(ops.map((o) => [o.id, []]));
  for (const o of ops) for (const d of o.dependencies) succ.get(d)?.push(o);
  const endOf = new Map(ops.map((o) => [o.id, o.startMs + o.durationMs]));
  const position = new Map(ops.map((o, i) => [o.id, i]));
  const readyAt = (o: Operation) => (o.dependencies.length === 0 ? o.startMs : Math.max(...o.dependencies.map((d) => endOf.get(d) ?? 0)));
  const ready = ops.filter((o) => o.dependencies.length === 0);
  const out: Operation[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => readyAt(a) - readyAt(b) || position.get(a.id)! - position.get(b.id)!);
    const u = ready.shift()!;
    out.push(u);
    for (const w of succ.get(u.id) ?? []) {
      const d = (indeg.get(w.id) ?? 0) - 1;
      indeg.set(w.id, d);
      if (d === 0) ready.push(w);
    }
  }
  return out;
}
