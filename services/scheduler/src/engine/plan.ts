/**
 * The plan phase (M8): at submission, every node with upstreams is marked SPECULATE or WAIT from
 * the edge classes' priors (or current posteriors) and static estimates (declared output tokens,
 * latency profiles). ΔT (M4) comes from re-timing the whole workflow with every speculable node
 * launched when its upstreams start, each judged against the others' expected hits (joint
 * decisions). The runtime may override it both ways; the plan records say what was expected.
 */
import {
  admissibility,
  canarySampled,
  countTokens,
  type DecisionRecord,
  type DependencyType,
  decide,
  edgeClassId,
  expectedCancelWasteUsd,
  llmCostUsd,
  type PendingEdge,
  pointEstimate,
  type PriceTable,
  classPosterior,
  suspectParams,
  resolvePrior,
  progressiveFailCostUsd,
  resolveDial,
  type Stage,
  timingAnalysis,
  type Workflow,
  type WorkflowNode,
} from '@gambit/shared';
import type { TenantConfig } from '../tenants.js';
import type { SpeculationControl } from './control.js';
import { expectedDurationMs, profileOf } from './estimates.js';
import { graphOf } from './run-view.js';
import { durationOf } from './timing.js';
import { calibrationOf } from './calibration-cache.js';

function combined(stages: readonly Stage[]): Stage {
  if (stages.includes('killed')) return 'killed';
  if (stages.includes('shadow')) return 'shadow';
  if (stages.includes('canary')) return 'canary';
  return 'online';
}

/** Prompt tokens with each upstream reference replaced by that upstream's expected output size. */
function staticPromptTokens(d: WorkflowNode, wf: Workflow): number {
  if (d.kind !== 'llm') return 0;
  const byId = graphOf(wf).byId;
  let extra = 0;
  const text = `${d.system ?? ''}${d.prompt}`.replace(/\{\{\s*nodes\.([A-Za-z][A-Za-z0-9_-]*)\.output[^}]*\}\}/g, (_m, id: string) => {
    const up = byId.get(id);
    extra += up?.kind === 'llm' ? up.expectedOutputTokens : 20;
    return '';
  });
  return countTokens(text) + extra;
}

export async function planDecisions(p: {
  tenant: string;
  runId: string;
  workflow: Workflow;
  speculation: boolean;
  alpha?: number;
  lambdaUsdPerSec?: number;
  tenantCfg: TenantConfig;
  control: SpeculationControl;
  priceTable: PriceTable;
  nowMs: number;
}): Promise<DecisionRecord[]> {
  const wf = p.workflow;
  const g = graphOf(wf);
  const dial = resolveDial(
    { alpha: p.tenantCfg.alpha, lambdaUsdPerSec: p.tenantCfg.lambdaUsdPerSec },
    { ...(p.alpha === undefined ? {} : { alpha: p.alpha }), ...(p.lambdaUsdPerSec === undefined ? {} : { lambdaUsdPerSec: p.lambdaUsdPerSec }) },
  );
  const cal = calibrationOf(p.tenantCfg.calibration);
  const speculable = (d: WorkflowNode): boolean => {
    const incoming = g.incoming.get(d.id) ?? [];
    return (
      incoming.length > 0 &&
      p.speculation &&
      incoming.every((e) => e.speculate) &&
      admissibility({ effects: d.effects, discloses: d.discloses }, { allowDisclosure: p.tenantCfg.allowDisclosure }).ok
    );
  };
  // M4: one timing analysis of the whole workflow, every speculable node launched with its P.
  const candidates: Array<{ id: string; p: number }> = [];
  for (const d of wf.nodes) {
    if (!speculable(d)) continue;
    let pJoint = 1;
    for (const e of g.incoming.get(d.id) ?? []) {
      const cid = edgeClassId(p.tenant, wf.name, e.from, e.to);
      const rp = resolvePrior(p.tenantCfg.priors, cid, e.type as DependencyType, e.k);
      const prior = rp.prior;
      const st = await p.control.classState(cid, {
        depType: e.type as DependencyType,
        ...(e.k === undefined ? {} : { k: e.k }),
        prior,
        initialStage: p.tenantCfg.initialStage,
        tenant: p.tenant,
      });
      pJoint *= pointEstimate(classPosterior(prior, st, suspectParams(p.tenantCfg.calibration, dial.alpha)), rp.mode ?? p.tenantCfg.posteriorMode);
    }
    candidates.push({ id: d.id, p: pJoint });
  }
  const timing = timingAnalysis({ nodes: wf.nodes.map((n) => ({ id: n.id, state: 'pending', duration: durationOf(n) })), edges: wf.edges });
  const dts = timing.jointDeltaTSec(candidates, new Set(candidates.map((c) => c.id)));
  const out: DecisionRecord[] = [];
  for (const d of wf.nodes) {
    const incoming = g.incoming.get(d.id) ?? [];
    if (incoming.length === 0) continue;
    const decisionId = `${p.runId}:${d.id}:plan`;
    const classes = incoming.map((e) => edgeClassId(p.tenant, wf.name, e.from, e.to));
    const base = { decisionId, phase: 'plan' as const, tenant: p.tenant, workflow: wf.name, runId: p.runId, node: d.id, edgeClasses: classes, atMs: p.nowMs };
    const admissible = admissibility({ effects: d.effects, discloses: d.discloses }, { allowDisclosure: p.tenantCfg.allowDisclosure }).ok;
    const enabled = p.speculation && incoming.every((e) => e.speculate);
    if (!admissible || !enabled) {
      const dec = decide({
        edges: [],
        cSpecUsd: 0,
        deltaTSec: 0,
        dial,
        stage: 'online',
        flags: { admissible, killed: false, hasPrediction: false, budgetOk: true, speculationEnabled: enabled },
      });
      out.push({ ...base, ...dec, p: 0 });
      continue;
    }
    const edges: PendingEdge[] = [];
    const stages: Stage[] = [];
    let killed = false;
    let estimatorUnavailable = false;
    const ups: Array<{ remainingMs: number; p: number }> = [];
    for (const [i, e] of incoming.entries()) {
      const classId = classes[i] ?? '';
      const rp = resolvePrior(p.tenantCfg.priors, classId, e.type as DependencyType, e.k);
      const prior = rp.prior;
      const mode = rp.mode ?? p.tenantCfg.posteriorMode;
      const st = await p.control.classState(classId, {
        depType: e.type as DependencyType,
        ...(e.k === undefined ? {} : { k: e.k }),
        prior,
        initialStage: p.tenantCfg.initialStage,
        tenant: p.tenant,
      });
      stages.push(st?.stage ?? p.tenantCfg.initialStage);
      const block = p.control.blocked(p.tenant, classId);
      if (block === 'kill') killed = true;
      else if (block === 'estimator') estimatorUnavailable = true;
      const posterior = classPosterior(prior, st, suspectParams(p.tenantCfg.calibration, dial.alpha));
      edges.push({ posterior, mode });
      const upDef = g.byId.get(e.from);
      ups.push({ remainingMs: upDef === undefined ? 0 : expectedDurationMs(upDef), p: pointEstimate(posterior, mode) });
    }
    let cSpecUsd = 0;
    let cFailUsd = 0;
    let unpriced = false;
    if (d.kind === 'llm') {
      const rates = p.priceTable.rates(d.provider, d.model);
      unpriced = rates === undefined;
      const inputTokens = staticPromptTokens(d, wf);
      if (rates !== undefined) {
        cSpecUsd = llmCostUsd(rates, { inputTokens, cachedInputTokens: 0, outputTokens: d.expectedOutputTokens });
        const prof = profileOf(d);
        const att = { rates, inputTokens, cachedInputTokens: 0, expectedOutputTokens: d.expectedOutputTokens, ttftMs: prof.ttftMs, tokensPerSec: prof.tokensPerSec };
        cFailUsd = ups.length === 1 ? expectedCancelWasteUsd(att, ups[0]?.remainingMs ?? 0) : progressiveFailCostUsd(att, ups);
      }
    } else {
      cSpecUsd = d.priceUsd > 0 ? d.priceUsd : p.priceTable.toolCallUsd(d.tool);
      cFailUsd = cSpecUsd;
    }
    const dt = dts.get(d.id) ?? 0;
    const dec = decide({
      edges,
      cSpecUsd,
      cFailUsd,
      deltaTSec: dt,
      dial,
      stage: combined(stages),
      flags: {
        admissible: true,
        killed,
        estimatorUnavailable,
        hasPrediction: true,
        budgetOk: true,
        speculationEnabled: true,
        canarySampled: canarySampled(decisionId, cal.canaryFraction),
        unpriced,
      },
    });
    out.push({ ...base, ...dec });
  }
  return out;
}
