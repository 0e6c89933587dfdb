/**
 * Streaming re-estimation (M8, issue 4 item 2): while an authoritative upstream streams, its
 * prefix is checked against every guess of it that a live speculation assumed. A prefix that
 * rules the guess out cancels the speculation mid-stream (billed only for what it consumed); a
 * prefix that settles the answer among the known labels re-makes the decision of a downstream
 * that had waited (WAIT → SPECULATE) with that label as a certain guess, before the upstream ends.
 */
import { type AdvanceEvent, type Edge, edgeClassId, prefixVerdict, settledBy } from "@gambit/shared";
import { loadHistory } from '../predictors/index.js';
import type { EngineDeps, RunEngine } from './engine.js';
import { loadRun, type RunSnapshot } from './run-view.js';

type PartialEvent = Extract<AdvanceEvent, { type: 'partial' }>;

/**
 * Labels an upstream can end with: its simulated outcomes, the edge's predictor value and
 * fallback, and the outputs the edge class has seen.
 */
export async function candidateLabels(deps: Pick<EngineDeps, 'redis' | 'ks'>, s: RunSnapshot, edge: Edge, classId: string): Promise<string[]> {
  const out = new Set<string>();
  const up = s.graph.byId.get(edge.from);
  if (up?.kind === 'llm') {
    for (const o of up.simulate?.outcomes ?? []) out.add(o.value);
    if (up.simulate?.output !== undefined && !up.simulate.output.includes('{{')) out.add(up.simulate.output);
  }
  if (edge.predictor?.value !== undefined) out.add(edge.predictor.value);
  if (edge.predictor?.fallback !== undefined) out.add(edge.predictor.fallback);
  const h = await loadHistory(deps.redis, deps.ks, classId);
  for (const v of h.counts.keys()) out.add(v);
  return [...out];
}

export async function onPartial(deps: EngineDeps, engine: RunEngine, ev: PartialEvent): Promise<void> {
  const s = await loadRun(deps.redis, deps.ks, ev.tenant, ev.runId);
  if (s === undefined || s.header.status !== 'running') return;
  const u = s.nodes.get(ev.nodeId);
  // Only the current authoritative attempt's stream says anything about the real output.
  if (u === undefined || u.state !== 'running' || u.auth !== ev.attemptId) return;
  for (const edge of s.graph.outgoing.get(ev.nodeId) ?? []) {
    const d = s.nodes.get(edge.to);
    const def = s.graph.byId.get(edge.to);
    if (d === undefined || def === undefined || d.state !== 'pending') continue;
    const guess = d.spec?.assumed[ev.nodeId];
    if (d.spec !== undefined) {
      if (guess !== undefined && d.spec.ok[ev.nodeId] !== 1 && prefixVerdict(guess, ev.text, edge.match) === 'ruled_out') {
        deps.log.info({ tenant: ev.tenant, runId: ev.runId, node: edge.to, upstream: ev.nodeId, seq: ev.seq }, 'stream ruled out the guess: cancelling');
        await engine.discard(s, edge.to, d.spec.a, 'miss', ev.nodeId);
      }
      continue;
    }
    if (!s.header.speculation || !edge.speculate || d.claims.stream === 1 || ev.text.trim() === '') continue;
    const classId = edgeClassId(s.header.tenant, s.workflow.name, edge.from, edge.to);
    const labels = await candidateLabels(deps, s, edge, classId);
    // One label alone is a guess, not something the stream revealed.
    if (labels.length < 2) continue;
    const label = settledBy(ev.text, labels, { caseInsensitive: edge.match.caseInsensitive });
    if (label === undefined) continue;
    deps.log.info({ tenant: ev.tenant, runId: ev.runId, node: edge.to, upstream: ev.nodeId, label, seq: ev.seq }, 'stream settled the answer: deciding again');
    await engine.decideAndAct(s, def, 'stream', new Map([[ev.nodeId, label]]));
  }
}
