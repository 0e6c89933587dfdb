/**
 * The `llm` predictor (M10): a cheap model produces the guess î of an upstream's output. It is
 * never on the critical path: its call is a speculative-queue job on the workers (an attempt of
 * the downstream node with id `<node>.g-<upstream>`, fenced and billed like any attempt), bought
 * only after the upstream's authoritative attempt was launched, and its result is used only while
 * the upstream still runs. This module prices the guess, renders its operation and names its
 * attempt; the engine decides whether to buy it (stage 1) and launches on it (stage 2).
 */
import {
  type AttemptRecord,
  countTokens,
  type Edge,
  llmCostUsd,
  type OpSpec,
  type PriceTable,
  type PredictorSpec,
  renderTemplate,
} from '@gambit/shared';
import type { RunSnapshot } from '../engine/run-view.js';

export const DEFAULT_GUESS_OUTPUT_TOKENS = 16;
export const DEFAULT_GUESS_MAX_TOKENS = 64;

/** Attempt id of the guess of `upstream`'s output for `nodeId` (node ids contain no '.'). */
export function guessAttemptId(nodeId: string, upstream: string): string {
  return `${nodeId}.g-${upstream}`;
}

export function isGuessAttempt(attemptId: string): boolean {
  return attemptId.includes('.g-');
}

/** The upstream a guess attempt guesses, or undefined for other attempts. */
export function guessedUpstream(attemptId: string): string | undefined {
  const i = attemptId.indexOf('.g-');
  return i < 0 ? undefined : attemptId.slice(i + 3);
}

/** Claim of the buy decision (M10 stage 1) of one edge. */
export function guessClaim(upstream: string): string {
  return `guess-${upstream}`;
}

export function isLlmPredictor(edge: Edge): edge is Edge & { predictor: PredictorSpec & { kind: 'llm'; provider: string; model: string; prompt: string } } {
  const p = edge.predictor;
  return p?.kind === 'llm' && p.provider !== undefined && p.model !== undefined && p.prompt !== undefined;
}

/** The predictor's operation: its prompt rendered on the run's inputs and finished outputs. */
export function guessOp(s: RunSnapshot, edge: Edge, nodeId: string, outputs: Record<string, string>): OpSpec | undefined {
  if (!isLlmPredictor(edge)) return undefined;
  const p = edge.predictor;
  let prompt: string;
  try {
    prompt = renderTemplate(p.prompt, { inputs: s.header.inputs, outputs });
  } catch {
    return undefined;
  }
  return {
    kind: 'llm',
    provider: p.provider,
    model: p.model,
    prompt,
    maxTokens: p.maxTokens ?? DEFAULT_GUESS_MAX_TOKENS,
    ...(p.simulate === undefined ? {} : { simulate: p.simulate }),
    seed: `${s.header.runId}:${nodeId}:guess:${edge.from}`,
  };
}

/** M2/M10: the guess's price: its prompt's tokens at the input rate plus its expected output. */
export function guessPriceUsd(priceTable: PriceTable, edge: Edge, op: OpSpec): number | undefined {
  if (op.kind !== 'llm' || !isLlmPredictor(edge)) return undefined;
  const rates = priceTable.rates(op.provider, op.model);
  if (rates === undefined) return undefined;
  const out = edge.predictor.expectedOutputTokens ?? DEFAULT_GUESS_OUTPUT_TOKENS;
  return llmCostUsd(rates, { inputTokens: countTokens(op.prompt), cachedInputTokens: 0, outputTokens: out });
}

/** A stand-in of the upstream's output of its expected size, to price the downstream before the guess exists. */
export function standInOutput(s: RunSnapshot, upstream: string): string {
  const def = s.graph.byId.get(upstream);
  const tokens = def?.kind === 'llm' ? def.expectedOutputTokens : 20;
  return 'x '.repeat(Math.max(1, Math.min(tokens, 100_000)));
}

/** The arrived guess of `upstream` for `nodeId`: the predictor attempt's output once it succeeded. */
export function arrivedGuess(s: RunSnapshot, nodeId: string, upstream: string): AttemptRecord | undefined {
  const a = s.attempts.get(guessAttemptId(nodeId, upstream));
  return a?.status === 'succeeded' && a.output !== undefined ? a : undefined;
}
