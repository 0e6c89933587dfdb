/**
 * Gathers the live numbers of one speculation decision (M1, M2, M4, M5, M6, M8, M9, M10) and
 * calls the one rule, `decide` from the shared core: guesses from the predictors, P from the
 * edge classes' posteriors, C_spec from the prompt rendered with the guesses, C_fail with
 * streaming cancellation, ΔT from re-timing the run's DAG (timing.ts), admissibility, the
 * kill-switch, the class stage, and the tenant's budget. Reads state; launches nothing.
 */
import {
  admissibility,
  canarySampled,
  countTokens,
  type DecisionRecord,
  type DependencyType,
  decide,
  type OpSpec,
  edgeClassId,
  expectedCancelWasteUsd,
  llmCostUsd,
  type PendingEdge,
  pointEstimate,
  type PriceTable,
  classPosterior,
  resolvePrior,
  progressiveFailCostUsd,
  renderTemplate,
  suspectParams,
  resolveDial,
  type SpeculativeAttempt,
  type Stage,
  type WorkflowNode,
} from '@gambit/shared';
import type { KeySpace, LiveSpec, RedisLike } from '@gambit/shared/redis';
import { type ClassHistory, loadHistory, type PredictorSet, requestHash } from '../predictors/index.js';
import { arrivedGuess, guessAttemptId, guessClaim, guessOp, guessPriceUsd, isLlmPredictor, standInOutput } from '../predictors/llm.js';
import type { TenantConfig } from '../tenants.js';
import type { SpeculationControl } from './control.js';
import { profileOf, remainingMs } from './estimates.js';
import { parseClasses } from './outcomes.js';
import { renderOp } from './jobs.js';
import { outputsOf, type RunSnapshot } from './run-view.js';
import type { OperationEstimateCache } from './op-estimates.js';
import { deltaTOf } from './timing.js';
import { calibrationOf } from './calibration-cache.js';

export interface DecisionResult {
  readonly record: DecisionRecord;
  /** Upstream -> guess, for every upstream still running. */
  readonly assumed: Record<string, string>;
  /** `up=class` pairs, comma-separated (node state stores it flat). */
  readonly classes: string;
  /** Launch price to reserve (M10), nano-USD. */
  readonly cSpecNanoUsd: number;
  /** Cascade sources (depth 2, M8): upstream -> the speculative attempt whose result is the guess. */
  readonly cascadeFrom: Record<string, string>;
  /**
   * M10 stage 1: paid guesses to buy first. When set, the record decides whether they are worth
   * buying (C_spec includes their price) and `assumed` holds stand-ins, never launched on.
   */
  readonly buy?: readonly GuessToBuy[];
}

/** A paid (`llm`) predictor's guess that the decision would buy (M10). */
export interface GuessToBuy {
  readonly up: string;
  readonly op: OpSpec;
  readonly priceUsd: number;
}

/**
 * M8 cascades (depth 2): a pending upstream whose own speculation has finished, whose guesses
 * are all on authoritative upstreams still running, and which is not itself a cascade. Its
 * speculative result is the guess; it is right exactly when that speculation hits.
 */
export function cascadeSource(s: RunSnapshot, upId: string): { output: string; spec: LiveSpec } | undefined {
  const u = s.nodes.get(upId);
  if (u?.state !== 'pending' || u.spec === undefined || u.spec.cas === 1) return undefined;
  const a = s.attempts.get(u.spec.a);
  if (a?.status !== 'succeeded' || a.output === undefined) return undefined;
  for (const up of Object.keys(u.spec.assumed)) if (u.spec.ok[up] !== 1 && s.nodes.get(up)?.state !== 'running') return undefined;
  return { output: a.output, spec: u.spec };
}

/** Whether `d` can be decided now: every unfinished upstream runs, or is a cascade source. */
export function decidable(s: RunSnapshot, nodeId: string): boolean {
  const pending = (s.graph.incoming.get(nodeId) ?? []).filter((e) => s.nodes.get(e.from)?.state !== 'succeeded');
  return pending.length > 0 && pending.every((e) => s.nodes.get(e.from)?.state === 'running' || cascadeSource(s, e.from) !== undefined);
}

/**
 * WAIT reasons that say "not now" rather than "no" (M8): another in-edge is not done yet
 * (`disabled` on a non-speculable pending edge), no guess yet, the budget, a kill. Such a WAIT
 * must not use up the node's `runtime` claim: it claims only the current set of pending
 * upstreams (`transientClaim`), so the node is decided again once that set changes (e.g. the
 * non-speculable upstream has finished and the speculable one still runs).
 */
export const TRANSIENT_REASONS: ReadonlySet<string> = new Set(['disabled', 'no_prediction', 'budget', 'killed', 'estimator_unavailable']);

/** The claim of a transient runtime WAIT: the unfinished upstreams and how each is pending. */
export function transientClaim(s: RunSnapshot, nodeId: string): string {
  const parts: string[] = [];
  for (const e of s.graph.incoming.get(nodeId) ?? []) {
    const u = s.nodes.get(e.from);
    if (u === undefined || u.state === 'succeeded') continue;
    // A paid guess that has arrived changes what can be decided (M10 stage 2).
    const guess = u.state === 'running' && arrivedGuess(s, nodeId, e.from) !== undefined ? '#g' : '';
    parts.push(u.state === 'running' ? `${e.from}${guess}` : `${e.from}*`);
  }
  return `runtime~${parts.sort().join('+')}`;
}

/** The claim a runtime decision with this reason uses: `runtime` (final) or a transient one. */
export function runtimeClaimFor(s: RunSnapshot, nodeId: string, reason: string): string {
  return TRANSIENT_REASONS.has(reason) ? transientClaim(s, nodeId) : 'runtime';
}

export interface DeciderDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly priceTable: PriceTable;
  readonly predictors: PredictorSet;
  readonly control: SpeculationControl;
  /** M4: learned operation-class durations for ΔT (timing.ts). */
  readonly opEstimates?: OperationEstimateCache;
}

function stageOf(stages: readonly Stage[]): Stage {
  if (stages.includes('killed')) return 'killed';
  if (stages.includes('shadow')) return 'shadow';
  if (stages.includes('canary')) return 'canary';
  return 'online';
}

/** Cost model of the downstream's attempt (M2, M8). */
function attemptModel(
  deps: DeciderDeps,
  node: WorkflowNode,
  renderedPromptTokens: number,
  outTokens: number,
  predictorUsd: number,
): { cSpecUsd: number; attempt: SpeculativeAttempt | undefined; unpriced: boolean } {
  if (node.kind !== 'llm') {
    const price = node.priceUsd > 0 ? node.priceUsd : deps.priceTable.toolCallUsd(node.tool);
    return { cSpecUsd: price + predictorUsd, attempt: undefined, unpriced: false };
  }
  const rates = deps.priceTable.rates(node.provider, node.model);
  // M2: no price is not free: the decision waits with reason `unpriced` (issue 9 item 9).
  if (rates === undefined) return { cSpecUsd: predictorUsd, attempt: undefined, unpriced: true };
  const p = profileOf(node);
  const cost = llmCostUsd(rates, { inputTokens: renderedPromptTokens, cachedInputTokens: 0, outputTokens: outTokens });
  return {
    unpriced: false,
    cSpecUsd: cost + predictorUsd,
    attempt: {
      rates,
      inputTokens: renderedPromptTokens,
      cachedInputTokens: 0,
      expectedOutputTokens: outTokens,
      ttftMs: p.ttftMs,
      tokensPerSec: p.tokensPerSec,
      fixedUsd: predictorUsd,
    },
  };
}

/**
 * Decides node `d` of the run. `settled` holds upstream outputs the stream has already revealed
 * (M8 WAIT→SPECULATE): they are guesses with P = 1. Returns undefined when `d` cannot be
 * decided now (an upstream is neither finished, running, nor a cascade source).
 */
export async function decideNode(
  deps: DeciderDeps,
  s: RunSnapshot,
  d: WorkflowNode,
  ctx: { tenantCfg: TenantConfig; phase: 'runtime' | 'stream'; settled?: ReadonlyMap<string, string>; nowMs: number },
): Promise<DecisionResult | undefined> {
  const { tenant, runId } = s.header;
  const wfName = s.workflow.name;
  const incoming = s.graph.incoming.get(d.id) ?? [];
  const outputs = outputsOf(s);
  const pendingEdges = incoming.filter((e) => s.nodes.get(e.from)?.state !== 'succeeded');
  if (!decidable(s, d.id)) return undefined;

  const dial = resolveDial(
    { alpha: ctx.tenantCfg.alpha, lambdaUsdPerSec: ctx.tenantCfg.lambdaUsdPerSec },
    {
      ...(s.header.alpha === undefined ? {} : { alpha: s.header.alpha }),
      ...(s.header.lambdaUsdPerSec === undefined ? {} : { lambdaUsdPerSec: s.header.lambdaUsdPerSec }),
    },
  );
  const decisionId = `${runId}:${d.id}:${ctx.phase}`;
  const classes = pendingEdges.map((e) => ({ edge: e, classId: edgeClassId(tenant, wfName, e.from, e.to) }));
  const admissible = admissibility({ effects: d.effects, discloses: d.discloses }, { allowDisclosure: ctx.tenantCfg.allowDisclosure }).ok;
  const enabled = s.header.speculation && pendingEdges.every((e) => e.speculate);
  const base = {
    decisionId,
    phase: ctx.phase,
    tenant,
    workflow: wfName,
    runId,
    node: d.id,
    edgeClasses: classes.map((c) => c.classId),
    atMs: ctx.nowMs,
  };
  const classStr = classes.map((c) => `${c.edge.from}=${c.classId}`).join(',');

  // M6: an irreversible (or disclosing, where not allowed) operation is never evaluated.
  if (!admissible || !enabled) {
    const dec = decide({
      edges: [],
      cSpecUsd: 0,
      deltaTSec: 0,
      dial,
      stage: 'online',
      flags: { admissible, killed: false, hasPrediction: false, budgetOk: true, speculationEnabled: enabled },
    });
    return { record: { ...base, ...dec, p: 0 }, assumed: {}, classes: classStr, cSpecNanoUsd: 0, cascadeFrom: {} };
  }

  // M5, M9: posterior and stage of every pending edge's class (with drift suspicion, suspect.ts).
  const suspect = suspectParams(ctx.tenantCfg.calibration, dial.alpha);
  const stages: Stage[] = [];
  const edges: PendingEdge[] = [];
  const assumed: Record<string, string> = {};
  const pendingRemaining: Array<{ remainingMs: number; p: number; up: string }> = [];
  let predictorUsd = 0;
  const buy: GuessToBuy[] = [];
  let hasPrediction = true;
  let killed = false;
  let estimatorUnavailable = false;
  let history: ClassHistory | undefined;
  const cascadeFrom: Record<string, string> = {};
  for (const { edge, classId } of classes) {
    // M5: the tenant's prior and posterior mode for this class (issue 9 item 7), else the type's.
    const rp = resolvePrior(ctx.tenantCfg.priors, classId, edge.type as DependencyType, edge.k);
    const prior = rp.prior;
    const mode = rp.mode ?? ctx.tenantCfg.posteriorMode;
    const st = await deps.control.classState(classId, {
      depType: edge.type as DependencyType,
      ...(edge.k === undefined ? {} : { k: edge.k }),
      prior,
      initialStage: ctx.tenantCfg.initialStage,
      tenant,
    });
    stages.push(st?.stage ?? ctx.tenantCfg.initialStage);
    const block = deps.control.blocked(tenant, classId);
    if (block === 'kill') killed = true;
    else if (block === 'estimator') estimatorUnavailable = true;
    const h = await loadHistory(deps.redis, deps.ks, classId);
    history ??= h;
    const settledValue = ctx.settled?.get(edge.from);
    const remaining = remainingMs(s, edge.from, ctx.nowMs);
    if (settledValue !== undefined) {
      assumed[edge.from] = settledValue;
      continue;
    }
    const src = s.nodes.get(edge.from)?.state === 'pending' ? cascadeSource(s, edge.from) : undefined;
    if (src !== undefined) {
      // Cascade: the guess is the upstream's speculative result; P is that speculation's hit
      // probability (its still-unconfirmed guesses), and it resolves when their upstreams end.
      cascadeFrom[edge.from] = src.spec.a;
      assumed[edge.from] = src.output;
      const upIncoming = s.graph.incoming.get(edge.from) ?? [];
      for (const p2 of parseClasses(src.spec.cls)) {
        if (src.spec.ok[p2.up] === 1) continue;
        const e2 = upIncoming.find((e) => e.from === p2.up);
        if (e2 === undefined) continue;
        const rp2 = resolvePrior(ctx.tenantCfg.priors, p2.classId, e2.type as DependencyType, e2.k);
        const prior2 = rp2.prior;
        const mode2 = rp2.mode ?? ctx.tenantCfg.posteriorMode;
        const st2 = await deps.control.classState(p2.classId, {
          depType: e2.type as DependencyType,
          ...(e2.k === undefined ? {} : { k: e2.k }),
          prior: prior2,
          initialStage: ctx.tenantCfg.initialStage,
          tenant,
        });
        const posterior2 = classPosterior(prior2, st2, suspect);
        edges.push({ posterior: posterior2, mode: mode2 });
        const r2 = remainingMs(s, p2.up, ctx.nowMs);
        pendingRemaining.push({ remainingMs: r2, p: pointEstimate(posterior2, mode2), up: edge.from });
      }
      continue;
    }
    if (isLlmPredictor(edge)) {
      // M10 two-stage purchase of a paid guess (predictors/llm.ts).
      const posterior = classPosterior(prior, st, suspect);
      const got = arrivedGuess(s, d.id, edge.from);
      const bought = s.attempts.get(guessAttemptId(d.id, edge.from));
      if (got !== undefined) {
        // Stage 2: the guess has arrived while the upstream runs; its price is sunk (not in C_spec).
        assumed[edge.from] = got.output ?? '';
      } else if (bought !== undefined || s.nodes.get(d.id)?.claims[guessClaim(edge.from)] === 1) {
        // In flight (or failed, or judged not worth buying): no guess yet.
        hasPrediction = false;
        continue;
      } else {
        // Stage 1: priced as if bought, on a stand-in of the upstream's expected size.
        const op = guessOp(s, edge, d.id, outputs);
        const priceUsd = op === undefined ? undefined : guessPriceUsd(deps.priceTable, edge, op);
        if (op === undefined || priceUsd === undefined) {
          hasPrediction = false;
          continue;
        }
        buy.push({ up: edge.from, op, priceUsd });
        assumed[edge.from] = standInOutput(s, edge.from);
        predictorUsd += priceUsd;
      }
      edges.push({ posterior, mode });
      pendingRemaining.push({ remainingMs: remaining, p: pointEstimate(posterior, mode), up: edge.from });
      continue;
    }
    const upDef = s.graph.byId.get(edge.from);
    const upOp = upDef === undefined ? undefined : safeRender(upDef, s, outputs);
    const guess =
      upOp === undefined
        ? undefined
        : deps.predictors.predict({ edge, classId, requestHash: requestHash(upOp), history: h, inputs: s.header.inputs, upstreamOp: upOp });
    if (guess === undefined) {
      hasPrediction = false;
      continue;
    }
    assumed[edge.from] = guess.value;
    predictorUsd += guess.costUsd;
    const posterior = classPosterior(prior, st, suspect);
    const pe: PendingEdge = { posterior, mode };
    edges.push(pe);
    pendingRemaining.push({ remainingMs: remaining, p: pointEstimate(posterior, mode), up: edge.from });
  }
  const stage = stageOf(stages);

  // M2: C_spec on the prompt rendered with the guesses; N_out from the running mean.
  let promptTokens = 0;
  if (hasPrediction && d.kind === 'llm') {
    try {
      const tctx = { inputs: s.header.inputs, outputs: { ...outputs, ...assumed } };
      promptTokens = countTokens(`${d.system === undefined ? '' : renderTemplate(d.system, tctx)}${renderTemplate(d.prompt, tctx)}`);
    } catch {
      // The guess does not fit the template (e.g. a JSON path into a non-JSON guess).
      hasPrediction = false;
    }
  }
  // N_out (M2) and with it C_spec and C_fail (M8, M10): the output tokens the operation class of d
  // has shown across the tenant's runs once it has minSamples observations (M4 estimates, as ΔT
  // uses its learned durations), else this edge class's running mean, else the declared estimate.
  const learnedOut = d.kind === 'llm' && deps.opEstimates !== undefined ? deps.opEstimates.learnedOutputTokens((await deps.opEstimates.forNodes(tenant, [d])).get(d.id)) : undefined;
  const outTokens = d.kind === 'llm' ? Math.round(learnedOut ?? history?.meanDownstreamOutputTokens ?? d.expectedOutputTokens) : 0;
  const { cSpecUsd, attempt, unpriced } = attemptModel(deps, d, promptTokens, outTokens, predictorUsd);

  // M8: C_fail with streaming cancellation (progressive validation for joins).
  let cFailUsd = cSpecUsd;
  if (attempt !== undefined && pendingRemaining.length === 1) cFailUsd = expectedCancelWasteUsd(attempt, pendingRemaining[0]?.remainingMs ?? 0);
  else if (attempt !== undefined && pendingRemaining.length > 1) cFailUsd = progressiveFailCostUsd(attempt, pendingRemaining);

  // M4: ΔT, the expected makespan reduction from re-timing the DAG with d launched now (jointly
  // with the siblings decidable on this snapshot); the analysis is shared by every decision on it.
  const dt = await deltaTOf(
    deps,
    s,
    d.id,
    {
      tenant,
      posteriorMode: ctx.tenantCfg.posteriorMode,
      priors: ctx.tenantCfg.priors,
      initialStage: ctx.tenantCfg.initialStage,
      allowDisclosure: ctx.tenantCfg.allowDisclosure,
      nowMs: ctx.nowMs,
      suspect,
    },
    decidable,
  );

  const cal = calibrationOf(ctx.tenantCfg.calibration);
  const flags = {
    admissible: true,
    killed,
    estimatorUnavailable,
    hasPrediction,
    budgetOk: true,
    speculationEnabled: true,
    canarySampled: canarySampled(decisionId, cal.canaryFraction),
    unpriced,
  };
  const dec = decide({ edges, cSpecUsd, predictorUsd, cFailUsd, deltaTSec: dt, dial, stage, flags });
  return {
    record: { ...base, ...dec },
    assumed: hasPrediction ? assumed : {},
    classes: classStr,
    cSpecNanoUsd: Math.ceil(cSpecUsd * 1e9),
    cascadeFrom,
    ...(hasPrediction && buy.length > 0 ? { buy } : {}),
  };
}

function safeRender(node: WorkflowNode, s: RunSnapshot, outputs: Record<string, string>) {
  try {
    return renderOp(node, { runId: s.header.runId, inputs: s.header.inputs, outputs });
  } catch {
    return undefined;
  }
}

/** The same decision after the budget refused the reservation (M10): the rule's `budget` WAIT. */
export function withBudgetRefused(r: DecisionResult, deps: { dial: { alpha: number; lambdaUsdPerSec: number } }): DecisionRecord {
  const rec = r.record;
  const dec = decide({
    edges: rec.posteriors.map((p) => ({
      posterior: { a: p.a, b: p.b },
      mode: p.mode === 'lcb' ? { kind: 'lower_bound', quantile: p.quantile ?? 0.1 } : { kind: 'mean' },
    })),
    cSpecUsd: rec.cSpecUsd,
    predictorUsd: rec.predictorUsd,
    cFailUsd: rec.cFailUsd,
    deltaTSec: rec.deltaTSec,
    dial: deps.dial,
    stage: rec.stage,
    flags: { admissible: true, killed: false, hasPrediction: true, budgetOk: false, speculationEnabled: true, canarySampled: true },
  });
  return { ...rec, ...dec };
}

