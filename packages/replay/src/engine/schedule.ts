/**
 * Replays one run as a DAG schedule under one policy (M0, M4, M8, M10).
 *
 * Without speculation a node starts `gapMs` after its last dependency's output is confirmed (so
 * under `never` every recorded start, duration and cost is reproduced exactly). A node with
 * opportunities is decided once, at the first moment the live scheduler could decide it (its
 * `decidable`, M8): every dependency not yet confirmed is either running authoritatively with a
 * guess available (its start, plus the guesser's latency when a model produced it) or a cascade
 * source; dependencies without a guess (and, for the oracle, those whose guess missed) must be
 * confirmed. The speculative attempt starts then, plus the node's gap.
 * - cascades (M8, depth 2): an upstream whose own speculation (not itself a cascade) has
 *   finished before its guesses are confirmed offers its speculative result as the guess. The
 *   node is decided then, with P the product of that speculation's still-unconfirmed edges'
 *   P (as the live decider: the upstream's hit probability) and of its own other pending edges;
 *   it hits exactly when that speculation hits, and the upstream's miss cancels it (the whole
 *   subtree). An upstream whose speculation is still running when its guesses are confirmed
 *   offers no guess: the node waits for it (live: neither running nor a cascade source).
 * - hit (every pending guess right): the node starts at its speculative start (never later than
 *   its normal start); its output is confirmed when it has ended and every pending upstream has
 *   produced its real output; its cost is unchanged.
 * - miss: the node starts at its normal start (a miss costs money, never latency, M0); the
 *   attempt is cancelled when the first miss is revealed (M8 progressive validation) and billed
 *   from the attempt's own operation when the trace records it (model.ts `MissModel`): input +
 *   output streamed until then; a tool attempt costs its full per-call price.
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
  llmCostUsd,
  type TimingEdge,
  type TimingNode,
  timingAnalysis,
} from '@gambit/shared';
import type { OpEstimate } from './estimates.js';
import { decisionMoment, type Schedule } from './decidable.js';
import { guesserCostNano, missCostNano, type ModelContext, type OpModel, type RunModel } from './model.js';
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
  /** M8: decided on an upstream's speculative result (depth 2). */
  readonly cascade: boolean;
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
  /**
   * Misses billed from the operation that finally ran, the trace recording no `speculative`
   * operation for the node (issue 9 item 8): replay assumed the attempt on the guess ran the same
   * operation (model or tool, prompt size, output).
   */
  readonly missesPricedFromRecorded: number;
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
  // end and the moment its guesses were confirmed.
  const confirmed = new Float64Array(n);
  // Speculations made so far (M4: later decisions see them in flight; M8: cascades stand on
  // them): start, P, end of the attempt, until when it is in flight (its confirmation on a hit,
  // its cancellation on a miss), NaN when none; whether it hit and whether it is a cascade.
  const specAt = new Float64Array(n).fill(Number.NaN);
  const specP = new Float64Array(n).fill(Number.NaN);
  const specEnd = new Float64Array(n).fill(Number.NaN);
  const specUntil = new Float64Array(n).fill(Number.NaN);
  const specHit = new Uint8Array(n);
  const cascade = new Uint8Array(n);
  const sched: Schedule = { start, confirmed, specAt, specP, specEnd, specUntil, specHit, cascade };
  let costNano = 0;
  let wasteNano = 0;
  let guessNano = 0;
  let speculations = 0;
  let hits = 0;
  let misses = 0;
  let missesPricedFromRecorded = 0;
  let brierSum = 0;
  let brierN = 0;
  const decisions: ReplayDecision[] = [];
  for (const node of m.ops) {
    const normalStart = normalStartOf(m, node, confirmed);
    let s = normalStart;
    let resolvedAt = 0;
    let lastCancelAt = Number.NaN;
    costNano += node.costNano;
    const edges = beliefs.get(node.op.id);
    if (edges !== undefined && edges.length > 0) {
      const r = decideNode(m, node, edges, estimates, normalStart, sched, beliefs, cfg, ctx);
      // M10: a bought guess is spent whatever happens next (booked as guess spend, not waste).
      costNano += r.guessNano;
      guessNano += r.guessNano;
      // Never decidable with an upstream pending (M8, decidable.ts): nothing to decide.
      if (r.guessedEdges === 0) {
        start[node.index] = s;
        confirmed[node.index] = s + node.durationMs;
        continue;
      }
      if (r.speculated) {
        specAt[node.index] = r.specStart;
        specP[node.index] = r.decision.p;
        specEnd[node.index] = r.specStart + (r.hit ? node.durationMs : node.miss.durationMs);
        specHit[node.index] = r.hit ? 1 : 0;
        cascade[node.index] = r.cascade ? 1 : 0;
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
          if (node.miss.source === 'recorded') missesPricedFromRecorded++;
          wasteNano += r.wasteNano;
          costNano += r.wasteNano;
          lastCancelAt = r.cancelAt;
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
          cascade: r.cascade,
        });
    }
    start[node.index] = s;
    confirmed[node.index] = Math.max(s + node.durationMs, resolvedAt);
    if (!Number.isNaN(specAt[node.index]!)) specUntil[node.index] = specHit[node.index] === 1 ? confirmed[node.index]! : lastCancelAt;
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
    missesPricedFromRecorded,
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
  /** M8: some pending upstream's guess is its speculative result. */
  readonly cascade: boolean;
  /** On a miss, when the attempt was cancelled (the first miss revealed); NaN otherwise. */
  readonly cancelAt: number;
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
      // A speculation counts from its decision (its start less the node's gap, which the
      // duration below includes): siblings decided a moment ago are launched, as live sees them.
      const decidedAt = sched.specAt[i]! - op.gapMs;
      if (!Number.isNaN(decidedAt) && decidedAt <= now && now < sched.specUntil[i]!) {
        nodes.push({
          id: op.op.id,
          state: 'pending',
          duration: distOf(op, op.gapMs),
          speculation: { p: sched.specP[i]!, elapsedMs: now - decidedAt, done: sched.specEnd[i]! <= now },
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
  // The oracle speculates only on guesses that are right (decidable.ts); every other policy on all guessed edges.
  const chosenAll = cfg.policy === 'oracle' ? edges.filter((e) => e.opportunity.matched) : edges;
  const idx = (id: string) => m.byId.get(id)!.index;
  // M10: the guesses this speculation would be launched on, bought at their upstream's
  // (authoritative) start: an upstream that hit on its own speculation never ran with a predictor.
  let guessNano = 0;
  for (const e of chosenAll) {
    const u = idx(e.opportunity.from);
    if (!Number.isNaN(sched.specAt[u]!) && sched.specHit[u] === 1 && cfg.policy !== 'oracle') continue;
    guessNano += guesserCostNano(e.opportunity.guesser, ctx.prices, `run ${m.run.runId} opportunity ${e.opportunity.from}->${e.opportunity.to}`);
  }
  // M8: the moment live could decide the node (decidable.ts); undefined: every upstream was
  // confirmed first (or never offered a guess while pending), nothing to decide.
  const moment = decisionMoment(m, node, edges, sched, cfg.policy === 'oracle');
  const edgeClasses = edges.map((e) => e.edgeClass);
  if (moment === undefined) {
    const input: DecideInput = { edges: [], cSpecUsd: 0, deltaTSec: 0, dial: cfg.dial, stage: 'replay', flags: NO_DECISION_FLAGS };
    return { input, decision: decide(input), edgeClasses, speculated: false, hit: false, allMatched: false, specStart: normalStart, resolvedAt: 0, wasteNano: 0, guessNano: 0, guessedEdges: 0, cascade: false, cancelAt: Number.NaN };
  }
  const specStart = moment.atMs + node.gapMs;
  const pending = [...moment.pending.entries()];
  const isCascade = pending.some(([, pm]) => pm.kind === 'cascade');
  // What the scheduler knows when it decides (the moment; the attempt starts a gap later): a
  // dependency that has ended, its real end; one still running, its start plus its estimated
  // duration (M4 uses estimates, not the future).
  const now = moment.atMs;
  const est = (op: OpModel) => estimates.get(op.op.id) ?? { durationMs: op.durationMs, outputTokens: op.op['gen_ai.usage.output_tokens'], slackMs: 0 };
  // M4: an upstream still running is expected to run E[T − t | T > t] more (never 0).
  const remainingAt = (d: number) => (end[d]! <= now ? 0 : durationFor(est(m.ops[d]!)).expectedRemainingMs(Math.max(0, now - start[d]!)));
  // P (M1, M8 as the live decider): a guessed edge's own posterior; a cascade edge the upstream
  // speculation's hit probability, the P of its edges still unconfirmed, resolving when their
  // upstreams end. Each miss is revealed at its upstream's confirmation (the cascade's: when the
  // upstream speculation is found wrong, which cancels the whole subtree).
  const pEdges: Array<{ posterior: EdgeBelief['posterior']; mode: PosteriorMode }> = [];
  const resolving: Array<{ remainingMs: number; p: number }> = [];
  let hit = true;
  let cancelAt = Number.POSITIVE_INFINITY;
  let resolvedAt = 0;
  for (const [d, pm] of pending) {
    resolvedAt = Math.max(resolvedAt, end[d]!);
    if (pm.kind === 'guess') {
      pEdges.push({ posterior: pm.edge.posterior, mode: cfg.posteriorMode });
      resolving.push({ remainingMs: remainingAt(d), p: pointEstimate(pm.edge.posterior, cfg.posteriorMode) });
      if (!pm.edge.opportunity.matched) {
        hit = false;
        cancelAt = Math.min(cancelAt, end[d]!);
      }
      continue;
    }
    for (const e of beliefs.get(m.ops[d]!.op.id) ?? []) {
      const g = idx(e.opportunity.from);
      if (end[g]! <= moment.atMs) continue;
      pEdges.push({ posterior: e.posterior, mode: cfg.posteriorMode });
      resolving.push({ remainingMs: remainingAt(g), p: pointEstimate(e.posterior, cfg.posteriorMode) });
    }
    if (sched.specHit[d] !== 1) {
      hit = false;
      cancelAt = Math.min(cancelAt, sched.specUntil[d]!);
    }
  }
  const predictorUsd = nanoToUsd(guessNano);
  const own = est(node);
  const attempt = node.attempt !== undefined && node.op.kind === 'llm' ? { ...node.attempt, expectedOutputTokens: own.outputTokens } : undefined;
  // M2: C_spec from the rendered prompt's tokens and the expected output (running mean).
  const attemptUsd =
    attempt !== undefined && node.op.costNanoUsd === undefined
      ? llmCostUsd(attempt.rates, { inputTokens: attempt.inputTokens, cachedInputTokens: attempt.cachedInputTokens, outputTokens: attempt.expectedOutputTokens })
      : nanoToUsd(node.costNano);
  // M4/M8: C_fail is the expected waste up to the first miss (progressive validation).
  const cFailAttemptUsd = attempt !== undefined ? Math.min(attemptUsd, progressiveFailCostUsd(attempt, resolving)) : attemptUsd;
  const deltaT = replayDeltaTSec(m, node, now, sched, beliefs, est, cfg);
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
      // Exactly on hits (a cascade on a speculation that misses is not one).
      speculated = node.admissible && hit;
      break;
  }
  // The guesses are bought by the policies that would launch on them (`ev`: stage 1 said buy).
  const bought =
    guessNano > 0 &&
    (cfg.policy === 'ev' ? buyDecision?.action === 'SPECULATE' : cfg.policy !== 'never' && (speculated || (cfg.policy === 'always' && node.admissible)));
  // The record: stage 1's WAIT (reason `predictor`) when the guesses were not worth buying.
  const decision =
    buyDecision !== undefined && buyDecision.action === 'WAIT'
      ? { ...buyDecision, reason: buyDecision.reason === 'below_threshold' ? ('predictor' as const) : buyDecision.reason }
      : launchDecision;
  // A guess available only after its upstream ended is never used (M10): only the guess is paid.
  // The miss is billed from the attempt's own operation when the trace records it (model.ts).
  const wasteNano = speculated && !hit ? missCostNano(node.miss, cancelAt - specStart) : 0;
  return {
    input: decision === launchDecision || buyInput === undefined ? input : buyInput,
    decision,
    edgeClasses,
    speculated,
    hit,
    allMatched: hit,
    specStart,
    resolvedAt,
    wasteNano,
    guessNano: bought ? guessNano : 0,
    guessedEdges: pending.length,
    cascade: isCascade,
    cancelAt: speculated && !hit ? cancelAt : Number.NaN,
  };
}

/** The flags of a node that was never decidable (no record is kept for it). */
const NO_DECISION_FLAGS = { admissible: true, killed: false, hasPrediction: false, budgetOk: true, speculationEnabled: true } as const;
