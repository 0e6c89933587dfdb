/**
 * Replays one run as a DAG schedule under one policy (M0, M4, M8, M10).
 *
 * Without speculation a node starts `gapMs` after its last dependency's output is confirmed (so
 * under `never` every recorded start, duration and cost is reproduced exactly). A node with
 * opportunities is decided when its speculative start is known: the policy picks the speculated
 * edges S (all edges with a guess; the oracle only those that matched) and the speculative
 * attempt would start once every dependency outside S is confirmed and every guess in S is
 * available (the upstream's start, plus the guesser's latency when a model produced it), plus
 * the node's gap.
 * - hit (every guess in S matched): the node starts at its speculative start (never later than
 *   its normal start); its output is confirmed when it has ended and every upstream in S has
 *   produced its real output; its cost is unchanged.
 * - miss: the node starts at its normal start (a miss costs money, never latency, M0); the
 *   attempt is cancelled when the first missed upstream is confirmed (M8 progressive validation) and
 *   billed with the core's fractional-waste function (input + output streamed until then); a
 *   tool attempt costs its full per-call price.
 * - joins (M4): an upstream that has ended by the speculative start gives its real output: P,
 *   the hit and the cancellation cover only the upstreams still pending then.
 * - paid guesses (M10): two stages, as live: stage 1 decides whether the guesses are worth buying
 *   (their price in C_spec and C_fail), stage 2 whether to launch on them (price sunk). A bought
 *   guess is booked as guess spend (`guessNano`, in the cost) on hits and misses alike, never
 *   as waste.
 * Every decision of every policy goes through the core's `decide` with the same inputs, so each
 * record carries P, C_spec, C_fail, ΔT, L, EV and the threshold; the policy then chooses the
 * action: `ev` follows the rule, `always` speculates whenever admissible with a guess,
 * `threshold` when P ≥ 0.5, `oracle` exactly on hits, `never` never.
 */
import {
  type Decision,
  type DecideInput,
  DEFAULT_DURATION_CV,
  type DurationDistribution,
  decide,
  fixedDuration,
  histogramDuration,
  type LogHistogram,
  type Dial,
  durationDistribution,
  lognormalDuration,
  nanoToUsd,
  type PosteriorMode,
  pointEstimate,
  progressiveFailCostUsd,
  costAtUsd,
  llmCostUsd,
  type TimingEdge,
  type TimingNode,
  timingAnalysis,
  usdToNano,
} from '@gambit/shared';
import type { OpEstimate } from './estimates.js';
import { guesserCostNano, type ModelContext, type OpModel, type RunModel } from './model.js';
import type { EdgeBelief } from './posteriors.js';

export const POLICIES = ['never', 'always', 'threshold', 'ev', 'oracle'] as const;
export type PolicyName = (typeof POLICIES)[number];

export interface PolicyConfig {
  readonly policy: PolicyName;
  readonly dial: Dial;
  readonly posteriorMode: PosteriorMode;
  /** P threshold of the `threshold` policy (default 0.5). */
  readonly fixedThreshold?: number;
}

/** One replayed decision: the core's inputs and output, the policy's action and the outcome. */
export interface ReplayDecision {
  readonly runId: string;
  readonly node: string;
  readonly edgeClasses: readonly string[];
  readonly input: DecideInput;
  readonly decision: Decision;
  readonly speculated: boolean;
  readonly hit: boolean;
  readonly wasteNano: number;
  readonly savedMs: number;
  /** When the decision was made: the speculative start, ms after the run's start. */
  readonly atMs: number;
}

export interface RunOutcome {
  readonly runId: string;
  readonly durationMs: number;
  readonly costNano: number;
  /** Attempt cost lost on misses (guesses excluded). */
  readonly wasteNano: number;
  /** M10: price of the paid guesses bought, on hits and misses alike (included in costNano). */
  readonly guessNano: number;
  readonly speculations: number;
  readonly hits: number;
  readonly misses: number;
  /** Σ (P − outcome)² and the number of terms, over decisions with a guess. */
  readonly brierSum: number;
  readonly brierN: number;
  readonly decisions?: ReplayDecision[];
}

/**
 * Replays one run; `beliefs` are the posteriors of its nodes' edges (posteriors.ts), `estimates`
 * the duration and output-token estimates a decision may use (estimates.ts).
 */
export function replayRun(
  m: RunModel,
  beliefs: ReadonlyMap<string, readonly EdgeBelief[]>,
  estimates: ReadonlyMap<string, OpEstimate>,
  cfg: PolicyConfig,
  ctx: ModelContext,
  keepDecisions = false,
): RunOutcome {
  const n = m.ops.length;
  const start = new Float64Array(n);
  // When each node's output is authoritative: its end, or for a speculative hit the later of its
  // end and the moment its guesses were confirmed. Downstreams consume only confirmed outputs,
  // so a speculation is only ever launched on a predictor's guess, never on another
  // speculation's unconfirmed result (no cascades, M8).
  const confirmed = new Float64Array(n);
  // Speculations made so far (M4: later decisions see them in flight): start and P, NaN when none.
  const specAt = new Float64Array(n).fill(Number.NaN);
  const specP = new Float64Array(n).fill(Number.NaN);
  const sched: Schedule = { start, confirmed, specAt, specP };
  let costNano = 0;
  let wasteNano = 0;
  let guessNano = 0;
  let speculations = 0;
  let hits = 0;
  let misses = 0;
  let brierSum = 0;
  let brierN = 0;
  const decisions: ReplayDecision[] = [];
  for (const node of m.ops) {
    const normalStart = normalStartOf(m, node, confirmed);
    let s = normalStart;
    let resolvedAt = 0;
    costNano += node.costNano;
    const edges = beliefs.get(node.op.id);
    if (edges !== undefined && edges.length > 0) {
      const r = decideNode(m, node, edges, estimates, normalStart, sched, beliefs, cfg, ctx);
      // M10: a bought guess is spent whatever happens next (booked as guess spend, not waste).
      costNano += r.guessNano;
      guessNano += r.guessNano;
      // Every guessed upstream ended before the speculative start: nothing left to decide (M4).
      if (r.guessedEdges === 0) {
        start[node.index] = s;
        confirmed[node.index] = s + node.durationMs;
        continue;
      }
      if (r.speculated) {
        specAt[node.index] = r.specStart;
        specP[node.index] = r.decision.p;
      }
      brierSum += (r.decision.p - (r.allMatched ? 1 : 0)) ** 2;
      brierN++;
      if (r.speculated) {
        speculations++;
        if (r.hit) {
          hits++;
          s = Math.min(normalStart, r.specStart);
          resolvedAt = r.resolvedAt;
        } else {
          misses++;
          wasteNano += r.wasteNano;
          costNano += r.wasteNano;
        }
      }
      if (keepDecisions)
        decisions.push({
          runId: m.run.runId,
          node: node.op.id,
          edgeClasses: r.edgeClasses,
          input: r.input,
          decision: r.decision,
          speculated: r.speculated,
          hit: r.speculated && r.hit,
          wasteNano: r.speculated && !r.hit ? r.wasteNano : 0,
          savedMs: normalStart - s,
          atMs: Math.min(r.specStart, normalStart),
        });
    }
    start[node.index] = s;
    confirmed[node.index] = Math.max(s + node.durationMs, resolvedAt);
  }
  let durationMs = 0;
  for (let i = 0; i < n; i++) durationMs = Math.max(durationMs, confirmed[i]!);
  return {
    runId: m.run.runId,
    durationMs,
    costNano,
    wasteNano,
    guessNano,
    speculations,
    hits,
    misses,
    brierSum,
    brierN,
    ...(keepDecisions ? { decisions } : {}),
  };
}

/**
 * Start without speculation: the gap after the last dependency's output is confirmed (exactly
 * the recorded start when nothing moved).
 */
function normalStartOf(m: RunModel, node: OpModel, end: Float64Array): number {
  if (node.deps.length === 0) return node.op.startMs;
  let last = 0;
  let recordedLast = 0;
  for (const d of node.deps) {
    last = Math.max(last, end[d]!);
    const dep = m.ops[d]!;
    recordedLast = Math.max(recordedLast, dep.op.startMs + dep.op.durationMs);
  }
  // Same float as recorded when no dependency moved: `never` reproduces the trace exactly.
  return last === recordedLast ? node.op.startMs : last + node.gapMs;
}

interface NodeResult {
  readonly input: DecideInput;
  readonly decision: Decision;
  readonly edgeClasses: string[];
  readonly speculated: boolean;
  readonly hit: boolean;
  readonly allMatched: boolean;
  readonly specStart: number;
  /** When every guess in S was confirmed by its upstream's real output. */
  readonly resolvedAt: number;
  /** Attempt cost lost on a miss (guesses excluded). */
  readonly wasteNano: number;
  /** M10: price of the guesses bought (0 when none): spent on hits and misses alike. */
  readonly guessNano: number;
  /** Guessed upstreams still pending at the speculative start (0: no decision to make). */
  readonly guessedEdges: number;
}

const DONE = fixedDuration(0);

/** A histogram's duration distribution, built once per histogram object. */
const histogramDists = new WeakMap<LogHistogram, DurationDistribution>();
function histogramDurationOf(h: LogHistogram): DurationDistribution {
  let d = histogramDists.get(h);
  if (d === undefined) {
    d = histogramDuration(h);
    histogramDists.set(h, d);
  }
  return d;
}

/** M4: the class's learned duration distribution where there is one, else the default spread around the mean. */
function durationFor(e: { readonly durationMs: number; readonly durationDist?: LogHistogram }): DurationDistribution {
  return e.durationDist !== undefined && e.durationDist.n > 0 ? histogramDurationOf(e.durationDist) : lognormalDuration(e.durationMs, DEFAULT_DURATION_CV);
}

/** A run's edges, one array per run model, so the timing analyses of its decisions share one topology model (core/timing.ts). */
const runEdges = new WeakMap<RunModel, readonly TimingEdge[]>();
function edgesOf(m: RunModel): readonly TimingEdge[] {
  let e = runEdges.get(m);
  if (e === undefined) {
    e = m.ops.flatMap((op) => op.deps.map((d) => ({ from: m.ops[d]!.op.id, to: op.op.id })));
    runEdges.set(m, e);
  }
  return e;
}

/** T + shift: a node not yet started also waits its gap (queueing, think time) first. */
function shiftedDuration(d: DurationDistribution, shiftMs: number): DurationDistribution {
  return durationDistribution({ meanMs: d.meanMs + shiftMs, cdf: (t) => d.cdf(t - shiftMs), quantileMs: (q) => shiftMs + d.quantileMs(q) });
}

/** What replayRun has scheduled so far (nodes before the one being decided). */
interface Schedule {
  readonly start: Float64Array;
  /** Confirmation times of the nodes decided so far. */
  readonly confirmed: Float64Array;
  readonly specAt: Float64Array;
  readonly specP: Float64Array;
}

/**
 * M4 ΔT as the scheduler would compute it at `now` (core/timing.ts): nodes confirmed by then are
 * done, started ones are running for what has elapsed, a speculation in flight counts as
 * launched, the rest are pending; durations are the estimates (gap included for nodes not yet
 * started) with the default spread. The node is judged jointly with the later nodes decidable
 * at the same instant (a fan-out's siblings: every dependency started or confirmed by now),
 * each hitting with the P of its edges.
 */
function replayDeltaTSec(
  m: RunModel,
  node: OpModel,
  now: number,
  sched: Schedule,
  beliefs: ReadonlyMap<string, readonly EdgeBelief[]>,
  est: (op: OpModel) => { readonly durationMs: number; readonly durationDist?: LogHistogram },
  cfg: PolicyConfig,
): number {
  // The class's learned distribution where there is one (M4), else the default spread around the mean.
  const distOf = (op: OpModel, shiftMs: number): DurationDistribution => {
    const d = durationFor(est(op));
    return shiftMs > 0 ? shiftedDuration(d, shiftMs) : d;
  };
  const nodes: TimingNode[] = [];
  const siblings: Array<{ id: string; p: number }> = [];
  for (const op of m.ops) {
    const i = op.index;
    if (i < node.index) {
      if (sched.confirmed[i]! <= now) {
        nodes.push({ id: op.op.id, state: 'done', duration: DONE });
        continue;
      }
      const sAt = sched.specAt[i]!;
      if (!Number.isNaN(sAt) && sAt <= now) {
        nodes.push({
          id: op.op.id,
          state: 'pending',
          duration: distOf(op, op.gapMs),
          speculation: { p: sched.specP[i]!, elapsedMs: now - sAt },
        });
        continue;
      }
      if (sched.start[i]! <= now) {
        nodes.push({ id: op.op.id, state: 'running', duration: distOf(op, 0), elapsedMs: now - sched.start[i]! });
        continue;
      }
    }
    nodes.push({ id: op.op.id, state: 'pending', duration: distOf(op, op.gapMs) });
    if (i <= node.index) continue;
    const eb = beliefs.get(op.op.id);
    if (eb === undefined || eb.length === 0 || !op.deps.every((d) => d < node.index && sched.start[d]! <= now)) continue;
    let p = 1;
    for (const e of eb) p *= pointEstimate(e.posterior, cfg.posteriorMode);
    siblings.push({ id: op.op.id, p });
  }
  const analysis = timingAnalysis({ nodes, edges: edgesOf(m) });
  if (siblings.length === 0) return analysis.deltaTSec(node.op.id);
  const own = beliefs.get(node.op.id) ?? [];
  let p = 1;
  for (const e of own) p *= pointEstimate(e.posterior, cfg.posteriorMode);
  const cands = [{ id: node.op.id, p }, ...siblings];
  return analysis.jointDeltaTSec(cands, new Set(cands.map((c) => c.id))).get(node.op.id) ?? 0;
}

function decideNode(
  m: RunModel,
  node: OpModel,
  edges: readonly EdgeBelief[],
  estimates: ReadonlyMap<string, OpEstimate>,
  normalStart: number,
  sched: Schedule,
  beliefs: ReadonlyMap<string, readonly EdgeBelief[]>,
  cfg: PolicyConfig,
  ctx: ModelContext,
): NodeResult {
  const { start, confirmed: end } = sched;
  // The oracle speculates only on edges whose guess matched; every other policy on all guessed edges.
  const chosenAll = cfg.policy === 'oracle' ? edges.filter((e) => e.opportunity.matched) : edges;
  const endOf = (e: EdgeBelief) => end[m.byId.get(e.opportunity.from)!.index]!;
  const speculativeStart = (S: readonly EdgeBelief[]): number => {
    const inS = new Set(S.map((e) => e.opportunity.from));
    let base = 0;
    for (const d of node.deps) {
      const dep = m.ops[d]!;
      const e = inS.has(dep.op.id) ? S.find((c) => c.opportunity.from === dep.op.id) : undefined;
      base = Math.max(base, e !== undefined ? start[d]! + (e.opportunity.guesser?.durationMs ?? 0) : end[d]!);
    }
    return node.deps.length === 0 ? normalStart : base + node.gapMs;
  };
  // M4 joins: P and the hit rule cover only the upstreams still pending at the speculative start;
  // one that has ended by then contributes its real output, not a guess.
  const first = speculativeStart(chosenAll);
  const chosen = chosenAll.filter((e) => endOf(e) > first);
  const guessed = cfg.policy === 'oracle' ? chosen : edges.filter((e) => endOf(e) > first);
  const allMatched = guessed.every((e) => e.opportunity.matched);
  // M10: the guesses this speculation would be launched on, bought at their upstream's start.
  let guessNano = 0;
  for (const e of chosenAll) guessNano += guesserCostNano(e.opportunity.guesser, ctx.prices, `run ${m.run.runId} opportunity ${e.opportunity.from}->${e.opportunity.to}`);
  const specStart = chosen.length === chosenAll.length ? first : speculativeStart(chosen);
  // What the scheduler knows at specStart: a dependency that has ended, its real end; one still
  // running, its start plus its estimated duration (M4 uses estimates, not the future).
  const est = (op: OpModel) => estimates.get(op.op.id) ?? { durationMs: op.durationMs, outputTokens: op.op['gen_ai.usage.output_tokens'], slackMs: 0 };
  // M4: an upstream still running is expected to run E[T − t | T > t] more (never 0).
  const remainingAt = (d: number) =>
    end[d]! <= specStart ? 0 : durationFor(est(m.ops[d]!)).expectedRemainingMs(Math.max(0, specStart - start[d]!));
  const own = est(node);
  const pEdges = guessed.map((e) => ({ posterior: e.posterior, mode: cfg.posteriorMode }));
  const predictorUsd = nanoToUsd(guessNano);
  const attempt = node.attempt !== undefined && node.op.kind === 'llm' ? { ...node.attempt, expectedOutputTokens: own.outputTokens } : undefined;
  // M2: C_spec from the rendered prompt's tokens and the expected output (running mean).
  const attemptUsd =
    attempt !== undefined && node.op.costNanoUsd === undefined
      ? llmCostUsd(attempt.rates, { inputTokens: attempt.inputTokens, cachedInputTokens: attempt.cachedInputTokens, outputTokens: attempt.expectedOutputTokens })
      : nanoToUsd(node.costNano);
  const pending = chosen.map((e) => {
    const up = m.byId.get(e.opportunity.from)!;
    return { remainingMs: remainingAt(up.index), p: pointEstimate(e.posterior, cfg.posteriorMode) };
  });
  // M4/M8: C_fail is the expected waste up to the first miss (progressive validation).
  const cFailAttemptUsd = attempt !== undefined ? Math.min(attemptUsd, progressiveFailCostUsd(attempt, pending)) : attemptUsd;
  const deltaT = node.deps.length === 0 || chosen.length === 0 ? 0 : replayDeltaTSec(m, node, specStart, sched, beliefs, est, cfg);
  // M10 two stages: whether the guesses are worth buying (their price in C_spec and C_fail), then,
  // once bought, whether to launch on them (the price is sunk: not counted).
  const input: DecideInput = {
    edges: pEdges,
    cSpecUsd: attemptUsd,
    cFailUsd: cFailAttemptUsd,
    deltaTSec: deltaT,
    dial: cfg.dial,
    // M9.5: the live detector's kill and the shadow re-entry after it (posteriors.ts).
    stage: edges.some((e) => e.stage === 'killed') ? 'killed' : edges.some((e) => e.stage === 'shadow') ? 'shadow' : 'replay',
    flags: { admissible: node.admissible, killed: false, hasPrediction: true, budgetOk: true, speculationEnabled: true },
  };
  const buyInput: DecideInput | undefined =
    guessNano > 0 ? { ...input, cSpecUsd: attemptUsd + predictorUsd, cFailUsd: cFailAttemptUsd + predictorUsd, predictorUsd } : undefined;
  const buyDecision = buyInput === undefined ? undefined : decide(buyInput);
  const launchDecision = decide(input);
  let speculated: boolean;
  switch (cfg.policy) {
    case 'never':
      speculated = false;
      break;
    case 'always':
      speculated = node.admissible;
      break;
    case 'threshold':
      speculated = node.admissible && launchDecision.p >= (cfg.fixedThreshold ?? 0.5);
      break;
    case 'ev':
      speculated = (buyDecision === undefined || buyDecision.action === 'SPECULATE') && launchDecision.action === 'SPECULATE';
      break;
    case 'oracle':
      speculated = node.admissible && chosen.length > 0;
      break;
  }
  if (chosen.length === 0) speculated = false;
  // The guesses are bought by the policies that would launch on them (`ev`: stage 1 said buy).
  const bought =
    guessNano > 0 &&
    (cfg.policy === 'ev' ? buyDecision?.action === 'SPECULATE' : cfg.policy !== 'never' && (speculated || (cfg.policy === 'always' && node.admissible)));
  // The record: stage 1's WAIT (reason `predictor`) when the guesses were not worth buying.
  const decision =
    buyDecision !== undefined && buyDecision.action === 'WAIT'
      ? { ...buyDecision, reason: buyDecision.reason === 'below_threshold' ? ('predictor' as const) : buyDecision.reason }
      : launchDecision;
  const hit = chosen.every((e) => e.opportunity.matched);
  let wasteNano = 0;
  if (speculated && !hit) {
    // The first missed upstream to end reveals the miss and cancels the attempt (M8).
    let cancelAt = Number.POSITIVE_INFINITY;
    for (const e of chosen) if (!e.opportunity.matched) cancelAt = Math.min(cancelAt, end[m.byId.get(e.opportunity.from)!.index]!);
    const elapsed = cancelAt - specStart;
    // A guess available only after its upstream ended is never used (M10): only the guess is paid.
    const attemptNano =
      elapsed <= 0 ? 0 : node.attempt !== undefined && node.op.kind === 'llm' ? usdToNano(costAtUsd(node.attempt, elapsed)) : node.costNano;
    wasteNano = Math.min(attemptNano, node.costNano);
  }
  return {
    input: decision === launchDecision || buyInput === undefined ? input : buyInput,
    decision,
    edgeClasses: edges.map((e) => e.edgeClass),
    speculated,
    hit,
    allMatched,
    specStart,
    resolvedAt: chosen.reduce((t, e) => Math.max(t, end[m.byId.get(e.opportunity.from)!.index]!), 0),
    wasteNano,
    guessNano: bought ? guessNano : 0,
    guessedEdges: guessed.length,
  };
}
