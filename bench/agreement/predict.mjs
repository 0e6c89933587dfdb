// Offline replay predictions for the agreement benchmark (M9 stage 1 checked against the live
// system). Two predictions per archetype:
//  - "live config": a replay trace built from the live speculation-off runs (each node's
//    measured start, duration and token usage, time scaled back to real ms; LLM ops priced by
//    replay from their tokens with the same createPriceTable() rates the services use), with each
//    opportunity's hit or miss taken from the paired speculation-on run (same realised outcomes,
//    so the comparison is not blurred by binomial sampling of hits). This is what replay of your
//    own recorded traces predicts; the measured speculation-on runs are the test.
//  - "archetype": replay of the archetype's own generated traces (its token-size and latency
//    distributions, docs/replay.md §5), to show how far the live simulated workload is from it.
import { createPriceTable } from '@gambit/shared';
import { replay, summarize } from '../../packages/replay/dist/index.js';
import { ruleMeans } from './compare.mjs';
import { retime, streamRuns } from './live.mjs';

function successful(node) {
  const ok = node.attempts.filter((a) => a.status === 'succeeded');
  return ok.find((a) => a.kind === 'authoritative') ?? ok[0];
}

/** A replay Run (trace-format.md) from one speculation-off view, outcomes from its paired on view. */
export function traceRun(workflow, off, on, timeScale) {
  // Attempt time scaled back by 1/timeScale, dispatch gaps kept as measured (live.mjs retime:
  // the defect behind issue 9's live/replay launch divergence).
  const timed = retime(workflow, off, timeScale).nodes;
  const operations = workflow.nodes.map((n) => {
    const a = successful(off.nodes[n.id]);
    if (a === undefined) throw new Error(`run ${off.runId}: node ${n.id} has no successful attempt`);
    const { startMs, durationMs } = timed[n.id];
    const dependencies = workflow.edges.filter((e) => e.to === n.id).map((e) => e.from);
    if (n.kind === 'tool')
      return { id: n.id, kind: 'tool', 'gen_ai.tool.name': n.tool, dependencies, startMs, durationMs, costNanoUsd: a.costNanoUsd ?? 0, effects: n.effects };
    const u = a.usage;
    const speculative = missedAttemptOp(n, on.nodes[n.id], timeScale);
    return {
      ...(speculative !== undefined ? { speculative } : {}),
      id: n.id,
      kind: 'llm',
      'gen_ai.provider.name': n.provider,
      'gen_ai.request.model': n.model,
      dependencies,
      startMs,
      durationMs,
      'gen_ai.usage.input_tokens': u.inputTokens + u.cachedInputTokens,
      'gen_ai.usage.cache_read.input_tokens': u.cachedInputTokens,
      'gen_ai.usage.output_tokens': u.outputTokens,
      effects: n.effects,
    };
  });
  const opportunities = workflow.edges
    .filter((e) => e.speculate !== false && e.predictor !== undefined)
    .map((e) => {
      // The guess the live predictor made where it launched (a most_frequent predictor may guess
      // another value than its fallback until its counts converge); else the designed one.
      const spec = on.nodes[e.to].attempts.find((a) => a.kind === 'speculative' && a.assumed?.[e.from] !== undefined);
      const guess = spec?.assumed[e.from] ?? (e.predictor.kind === 'fixed' ? e.predictor.value : e.predictor.fallback);
      const actual = String(on.nodes[e.from].output ?? '');
      return { from: e.from, to: e.to, type: e.type, ...(e.k !== undefined ? { k: e.k } : {}), guess, actual, matched: actual.trim() === guess.trim() };
    });
  return { v: 3, runId: off.runId, tenant: off.tenant, workflow: workflow.name, startUnixMs: on.createdAtMs, operations, opportunities };
}

/**
 * The speculative attempt's own operation (trace format v3, issue 9 item 8) of an LLM node in the
 * paired speculation-on run, when it missed: what ran on the guess (its prompt rendered with the
 * guessed upstream output, its own tokens and running time re-timed at scale 1, cancelled or run
 * to its end), which replay bills a miss from. None when live did not launch it, it hit, or it
 * never started (nothing ran). Time to first token: the simulated provider's, where the node sets
 * one (the tool stand-ins); else the model's latency profile, which the simulator also uses.
 */
export function missedAttemptOp(n, onNode, timeScale) {
  if (n.kind !== 'llm' || onNode === undefined) return undefined;
  const a = onNode.attempts.find((x) => x.kind === 'speculative' && !(onNode.source === 'speculative' && x.status === 'succeeded'));
  if (a === undefined || a.startedAtMs === undefined || a.finishedAtMs === undefined || a.usage === undefined) return undefined;
  const u = a.usage;
  return {
    kind: 'llm',
    'gen_ai.provider.name': n.provider,
    'gen_ai.request.model': n.model,
    durationMs: (a.finishedAtMs - a.startedAtMs) / timeScale,
    cancelled: a.status === 'cancelled',
    ...(n.simulate?.ttftMs !== undefined ? { timeToFirstTokenMs: n.simulate.ttftMs } : {}),
    'gen_ai.usage.input_tokens': u.inputTokens + u.cachedInputTokens,
    'gen_ai.usage.cache_read.input_tokens': u.cachedInputTokens,
    'gen_ai.usage.output_tokens': u.outputTokens,
    ...(a.output !== undefined ? { output: a.output } : {}),
  };
}

function pick(summaries, policy) {
  const s = summaries.find((x) => x.policy === policy);
  return s;
}

/** The diagnostics accumulator of one node, created on first use. */
function slot(out, id) {
  if (out[id] === undefined) out[id] = { launched: 0, hits: 0, wastedNano: 0, decisions: {}, p: [], cSpecUsd: [], deltaTSec: [], list: [] };
  return out[id];
}

const avg = (xs) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Per downstream node: replay's launches, hits and decisions (same shape as liveNodeDiagnostics). */
function replayNodeDiagnostics(runs, skip = {}) {
  const out = {};
  for (const r of runs)
    for (const d of r.decisions ?? []) {
      // A node's runs in which live launched on the upstream's stream (live.mjs streamRuns).
      if (skip[d.node]?.has(d.runId)) continue;
      const n = slot(out, d.node);
      if (d.speculated) n.launched++;
      if (d.hit) n.hits++;
      const key = `${d.speculated ? 'SPECULATE' : 'WAIT'}:${d.decision.reason}`;
      n.decisions[key] = (n.decisions[key] ?? 0) + 1;
      n.p.push(d.decision.p);
      n.cSpecUsd.push(d.decision.cSpecUsd);
      n.deltaTSec.push(d.decision.deltaTSec);
      n.wastedNano += d.wasteNano;
      n.list.push({ key, p: d.decision.p, deltaTSec: d.decision.deltaTSec });
    }
  return Object.fromEntries(
    Object.entries(out).map(([id, n]) => [
      id,
      { launched: n.launched, hits: n.hits, wastedUsd: n.wastedNano / 1e9, decisions: n.decisions, meanP: avg(n.p), meanCSpecUsd: avg(n.cSpecUsd), meanDeltaTSec: avg(n.deltaTSec), ...ruleMeans(n.list) },
    ]),
  );
}

/** Replay prediction from the live runs (see the header). */
export function predictFromLive(workflow, pairs, timeScale, dial, prices = createPriceTable(), skip = streamRuns(pairs)) {
  const runs = pairs.map((p) => traceRun(workflow, p.off, p.on, timeScale));
  const result = replay(runs, { policies: ['never', 'ev'], dial, prices, keepDecisions: true });
  const sums = summarize(result);
  const never = pick(sums, 'never');
  const ev = pick(sums, 'ev');
  return {
    nodes: replayNodeDiagnostics(result.policies.find((p) => p.policy === 'ev').runs, skip),
    meanOffSec: never.meanLatencyMs / 1000,
    meanOnSec: ev.meanLatencyMs / 1000,
    latencyRatio: ev.meanVsNever,
    usdPerRunOff: never.dollarsPerRun,
    usdPerRunOn: ev.dollarsPerRun,
    wastedUsdPerRun: ev.wastedUsdPerRun,
    speculations: ev.speculations,
    hits: ev.hits,
    misses: ev.misses,
    perRunOnSec: result.policies.find((p) => p.policy === 'ev').runs.map((r) => r.durationMs / 1000),
  };
}

/** Replay of the archetype's own generated traces (designed token and latency distributions). */
export function predictFromArchetype(archetype, runs, dial, prices = createPriceTable()) {
  const result = replay(archetype.generate({ seed: 1, runs }), { policies: ['never', 'ev'], dial, prices });
  const sums = summarize(result);
  const never = pick(sums, 'never');
  const ev = pick(sums, 'ev');
  return {
    meanOffSec: never.meanLatencyMs / 1000,
    meanOnSec: ev.meanLatencyMs / 1000,
    latencyRatio: ev.meanVsNever,
    usdPerRunOff: never.dollarsPerRun,
    usdPerRunOn: ev.dollarsPerRun,
    wastedUsdPerRun: ev.wastedUsdPerRun,
    speculations: ev.speculations,
    hits: ev.hits,
  };
}
