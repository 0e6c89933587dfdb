// Decision-core benchmark (METHOD.md M1-M5, M8): how fast is one full speculation decision on a
// realistic 50-node DAG, right after a state change? A full decision = ΔT from the run's timing
// analysis (M4: the expected makespan reduction from re-timing the DAG over Latin-hypercube
// duration draws, judged jointly with the siblings decidable in the same state) + C_spec from the
// price table and C_fail with progressive validation (M2, M8) + the posterior point estimate (M5)
// + the rule (M4).
//
// What is measured: every round replays every run state as a fresh state change (the running
// nodes' elapsed times move by a per-round jitter, so no result of an earlier round can be
// reused); the state's timing analysis is built (as the scheduler does once per snapshot: what
// carries over between states is what a live scheduler reuses too, the workflow's topology, the
// distributions' quantile tables and draws, and the waiting region below the frontier with its
// tails, which stays the same while the same nodes wait) and then every candidate of the state
// is decided.
// - decisionAfterStateChange (the target): each decision's latency, the first decision of a
//   state paying for that state's analysis build (what the first decision on a new snapshot
//   waits for), the others reusing it.
// - fullDecision: each decision alone, the state's analysis already built.
// - analysisBuildPerState, and amortizedPerDecision = (build + the state's decisions) / decisions.
// - decisionAfterRegionChange: the same, on states where part of the frontier has already
//   started (each candidate running with probability 0.3, drawn per round), so that the set of
//   waiting nodes, and with it the waiting region, is rarely one seen before (what the first
//   state after a node starts pays). Reported beside the target, not part of it.
// Baselines measured in the same run: the old path (a critical path per decision, overlap minus
// slack) and the rule alone. Target (issue 9): decisionAfterStateChange p99 ≤ 20 µs; the run
// fails (exit 1) above it.
//
//   pnpm exec turbo run build && node bench/decision/run.mjs [--rounds N]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_DURATION_CV,
  DEPENDENCY_TYPES,
  countTokens,
  createPriceTable,
  criticalPath,
  decide,
  expectedLlmDurationMs,
  latencyProfile,
  llmCostUsd,
  lognormalDuration,
  mulberry32,
  priorFor,
  progressiveFailCostUsd,
  timingAnalysis,
  updatePosterior,
} from '@gambit/shared';

const here = dirname(fileURLToPath(import.meta.url));
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 400;
const WARMUP_ROUNDS = 50;

const MODELS = [
  ['openai', 'gpt-5-nano'],
  ['openai', 'gpt-5-mini'],
  ['openai', 'gpt-4o-mini'],
  ['openai', 'gpt-4.1-mini'],
  ['anthropic', 'claude-haiku-4-5'],
  ['anthropic', 'claude-sonnet-4-5'],
  ['google', 'gemini-2.5-flash'],
  ['openai', 'gpt-5'],
];
// Layer sizes summing to 50: a source, fan-out, a wide middle, joins down to one sink.
const LAYERS = [1, 4, 7, 9, 10, 8, 6, 4, 1];

/** A layered 50-node DAG with fan-out and joins, LLM nodes with realistic token counts. */
function buildDag(rnd) {
  const nodes = [];
  const layers = [];
  let id = 0;
  for (const size of LAYERS) {
    const layer = [];
    for (let i = 0; i < size; i++) {
      const [provider, model] = MODELS[Math.floor(rnd() * MODELS.length)];
      const inputTokens = 300 + Math.floor(rnd() * 4000);
      const outputTokens = 10 + Math.floor(rnd() ** 2 * 800);
      const node = { id: `n${id++}`, provider, model, inputTokens, cachedInputTokens: Math.floor(inputTokens * rnd() * 0.6), outputTokens };
      node.durationMs = expectedLlmDurationMs(model, outputTokens);
      nodes.push(node);
      layer.push(node);
    }
    layers.push(layer);
  }
  const edges = [];
  const seen = new Set();
  const addEdge = (from, to) => {
    const key = `${from.id}->${to.id}`;
    if (seen.has(key)) return;
    seen.add(key);
    const type = DEPENDENCY_TYPES[Math.floor(rnd() * DEPENDENCY_TYPES.length)];
    const k = type === 'router_k_way' ? 2 + Math.floor(rnd() * 6) : undefined;
    const hits = Math.floor(rnd() * 200);
    const posterior = updatePosterior(priorFor(type, k), hits, Math.floor(rnd() * 200));
    const mode = rnd() < 0.25 ? { kind: 'lower_bound', quantile: 0.1 } : { kind: 'mean' };
    edges.push({ from: from.id, to: to.id, type, posterior, mode });
  };
  for (let l = 1; l < layers.length; l++) {
    const prev = layers[l - 1];
    // Every node of the previous layer feeds at least one node here (fan-out).
    prev.forEach((u, i) => {
      addEdge(u, layers[l][i % layers[l].length]);
    });
    for (const d of layers[l]) {
      const parents = 1 + Math.floor(rnd() * 3); // joins of 1-3 upstreams
      for (let j = 0; j < parents; j++) addEdge(prev[Math.floor(rnd() * prev.length)], d);
      if (l >= 2 && rnd() < 0.2) addEdge(layers[l - 2][Math.floor(rnd() * layers[l - 2].length)], d);
    }
  }
  return { nodes, edges };
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function stats(samplesNs) {
  const s = Float64Array.from(samplesNs).sort();
  const totalNs = s.reduce((a, b) => a + b, 0);
  return {
    n: s.length,
    p50Us: quantile(s, 0.5) / 1000,
    p99Us: quantile(s, 0.99) / 1000,
    meanUs: totalNs / s.length / 1000,
    perSec: s.length / (totalNs / 1e9),
  };
}

const P99_TARGET_US = 20;
const candidatesPerStateOf = (states) => states.reduce((s, st) => s + st.candidates.length, 0) / states.length;
const rnd = mulberry32(2026);
const dag = buildDag(rnd);
const prices = createPriceTable();
const byId = new Map(dag.nodes.map((n) => [n.id, n]));
const preds = new Map(dag.nodes.map((n) => [n.id, []]));
for (const e of dag.edges) preds.get(e.to).push(e);
const layerOf = new Map();
{
  let i = 0;
  LAYERS.forEach((size, l) => {
    for (let j = 0; j < size; j++) layerOf.set(`n${i++}`, l);
  });
}
const cpInput = { nodes: dag.nodes.map((n) => ({ id: n.id, durationMs: n.durationMs })), edges: dag.edges };
const dial = { alpha: 0.5, lambdaUsdPerSec: 0.01 };
const flags = { admissible: true, killed: false, hasPrediction: true, budgetOk: true, speculationEnabled: true };
const dist = new Map(dag.nodes.map((n) => [n.id, lognormalDuration(n.durationMs, DEFAULT_DURATION_CV)]));
const pOf = (id) => preds.get(id).reduce((p, e) => p * (e.posterior.a / (e.posterior.a + e.posterior.b)), 1);

/**
 * Run states: the frontier at layer L (1..8) with its upstream layer L−1 running `frac` of the
 * way, earlier layers done, later ones pending. The candidates are layer L (all decidable).
 */
const STATES = [];
for (let L = 1; L < LAYERS.length; L++) {
  for (const frac of [0, 0.3, 0.6, 0.9]) {
    /** The state at round r: the running layer's elapsed times jittered by up to 1% of their duration. */
    const nodesAt = (r) =>
      dag.nodes.map((n) => {
        const l = layerOf.get(n.id);
        if (l < L - 1) return { id: n.id, state: 'done', duration: dist.get(n.id) };
        if (l === L - 1) return { id: n.id, state: 'running', duration: dist.get(n.id), elapsedMs: (frac + ((r * 7919) % 101) / 10000) * n.durationMs };
        return { id: n.id, state: 'pending', duration: dist.get(n.id) };
      });
    const candidates = dag.nodes.filter((n) => layerOf.get(n.id) === L).map((n) => ({ id: n.id, p: pOf(n.id) }));
    STATES.push({ L, frac, nodesAt, candidates });
  }
}
const buildAnalysis = (nodes) => timingAnalysis({ nodes, edges: dag.edges });

/** C_spec, C_fail and the rule for candidate `id` at ΔT `dT` with upstreams `frac` done. */
function costsAndRule(id, frac, dT) {
  const d = byId.get(id);
  const pending = preds.get(id);
  const ups = pending.map((e) => ({ remainingMs: byId.get(e.from).durationMs * (1 - frac), p: e.posterior.a / (e.posterior.a + e.posterior.b) }));
  const rates = prices.rates(d.provider, d.model);
  const cSpec = llmCostUsd(rates, { inputTokens: d.inputTokens - d.cachedInputTokens, cachedInputTokens: d.cachedInputTokens, outputTokens: d.outputTokens });
  const lat = latencyProfile(d.model);
  const cFail = progressiveFailCostUsd(
    { rates, inputTokens: d.inputTokens - d.cachedInputTokens, cachedInputTokens: d.cachedInputTokens, expectedOutputTokens: d.outputTokens, ttftMs: lat.ttftMs, tokensPerSec: lat.tokensPerSec },
    ups,
  );
  return decide({ edges: pending.map((e) => ({ posterior: e.posterior, mode: e.mode })), cSpecUsd: cSpec, cFailUsd: cFail, deltaTSec: dT, dial, stage: 'online', flags });
}

/** The old path (before issue 9): a critical path per decision, ΔT = overlap minus slack. */
function oldDecision(id, frac) {
  const cp = criticalPath(cpInput);
  const d = byId.get(id);
  const up = Math.max(...preds.get(id).map((e) => byId.get(e.from).durationMs * (1 - frac)));
  const dT = Math.max(0, Math.min(up, d.durationMs) - cp.byNode.get(id).slackMs) / 1000;
  return costsAndRule(id, frac, dT);
}

const now = () => process.hrtime.bigint();
let sink = 0;

/**
 * Round r: every state as a fresh state change (its analysis built, then every candidate decided
 * jointly with its siblings, as the scheduler's deltaTOf does).
 */
function round(r, m, actions) {
  for (const st of STATES) {
    const nodes = st.nodesAt(r);
    const t0 = now();
    const a = buildAnalysis(nodes);
    const build = Number(now() - t0);
    let total = build;
    st.candidates.forEach((c, i) => {
      const t1 = now();
      // The state's whole candidate list, as the scheduler's deltaTOf passes it (c's own entry is ignored).
      const dT = a.deltaTSecWith(c.id, st.candidates);
      const dec = costsAndRule(c.id, st.frac, dT);
      const own = Number(now() - t1);
      total += own;
      m?.decision.push(own);
      m?.afterChange.push(i === 0 ? build + own : own);
      if (i === 0) m?.firstByLayer[st.L].push(build + own);
      sink += dec.evUsd;
      if (actions !== undefined) actions[dec.action === 'SPECULATE' ? 'SPECULATE' : dec.reason]++;
    });
    m?.build.push(build);
    m?.amortized.push(total / st.candidates.length);
  }
}

/**
 * State `st` at round r with part of its frontier started: each candidate already running (5% of
 * its duration in) with probability 0.3, seeded by the round and the state; the others decide.
 */
function frontierStartedAt(st, r) {
  const rnd = mulberry32((r * 7919 + st.L * 131 + Math.round(st.frac * 10)) >>> 0);
  const started = new Set(st.candidates.filter(() => rnd() < 0.3).map((c) => c.id));
  const nodes = st
    .nodesAt(r)
    .map((n) => (started.has(n.id) ? { id: n.id, state: 'running', duration: n.duration, elapsedMs: 0.05 * byId.get(n.id).durationMs } : n));
  return { nodes, candidates: st.candidates.filter((c) => !started.has(c.id)) };
}

/** Round r of decisionAfterRegionChange: every state with part of its frontier started (see frontierStartedAt). */
function regionRound(r, ns) {
  for (const st of STATES) {
    const { nodes, candidates } = frontierStartedAt(st, r);
    const t0 = now();
    const a = buildAnalysis(nodes);
    const build = Number(now() - t0);
    candidates.forEach((c, i) => {
      const t1 = now();
      const dT = a.deltaTSecWith(c.id, candidates);
      const dec = costsAndRule(c.id, st.frac, dT);
      const own = Number(now() - t1);
      ns?.push(i === 0 ? build + own : own);
      sink += dec.evUsd;
    });
  }
}

function oldRound(ns) {
  for (const st of STATES) {
    for (const c of st.candidates) {
      const t0 = now();
      sink += oldDecision(c.id, st.frac).evUsd;
      ns?.push(Number(now() - t0));
    }
  }
}

const ruleInput = { edges: [{ posterior: { a: 8, b: 2 } }], cSpecUsd: 0.01, cFailUsd: 0.006, deltaTSec: 1.2, dial, stage: 'online', flags };
for (let r = 0; r < WARMUP_ROUNDS; r++) {
  round(r);
  oldRound();
  sink += decide(ruleInput).evUsd;
}
const ns = { decision: [], afterChange: [], build: [], amortized: [], firstByLayer: LAYERS.map(() => []) };
for (let r = 0; r < ROUNDS; r++) round(WARMUP_ROUNDS + r, ns);
const oldNs = [];
for (let r = 0; r < ROUNDS; r++) oldRound(oldNs);
const ruleNs = [];
for (let r = 0; r < ROUNDS * 20; r++) {
  const t0 = now();
  sink += decide(ruleInput).evUsd;
  ruleNs.push(Number(now() - t0));
}
const afterChange = stats(ns.afterChange);
// The first decision of a state (it waits for the state's analysis), per frontier layer: what
// the p99 above is made of (a state's cost grows with the nodes running and deciding in it).
const firstDecisionByFrontierLayer = Object.fromEntries(
  ns.firstByLayer.flatMap((xs, L) => (xs.length === 0 ? [] : [[`L${L}`, { running: LAYERS[L - 1], candidates: LAYERS[L], ...stats(xs) }]])),
);

/**
 * Bytes allocated on the JS heap per call of `fn` (heapUsed growth over `reps` calls; a batch
 * during which a collection ran shows a drop and is measured again).
 */
function bytesPer(fn, reps) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < reps; i++) fn(i);
    const grown = process.memoryUsage().heapUsed - before;
    if (grown >= 0) return grown / reps;
  }
  return Number.NaN;
}
// Allocation of the decision path (the states' node arrays made beforehand, as a snapshot is):
// per state, its analysis built, then every candidate's ΔT, measured apart.
const prebuilt = STATES.map((st) => st.nodesAt(7));
let built;
const allocation = {
  analysisBuildBytesPerState: bytesPer((i) => {
    built = buildAnalysis(prebuilt[i % STATES.length]);
  }, STATES.length * 4),
  deltaTBytesPerDecision: (() => {
    let bytes = 0;
    let decisions = 0;
    for (let i = 0; i < STATES.length * 4; i++) {
      const st = STATES[i % STATES.length];
      const a = buildAnalysis(prebuilt[i % STATES.length]);
      bytes += bytesPer(() => {
        for (const c of st.candidates) sink += a.deltaTSecWith(c.id, st.candidates);
      }, 1);
      decisions += st.candidates.length;
    }
    return bytes / decisions;
  })(),
  costsAndRuleBytesPerDecision: bytesPer((i) => {
    const st = STATES[i % STATES.length];
    sink += costsAndRule(st.candidates[0].id, st.frac, 1).evUsd;
  }, 2000),
};
sink += built === undefined ? 0 : 1;
// After the allocation batches (whose states' waiting regions are kept from the rounds above):
// the states with part of the frontier started, each round's mostly new regions made anew.
const regionNs = [];
for (let r = 0; r < WARMUP_ROUNDS; r++) regionRound(100_000 + r);
for (let r = 0; r < ROUNDS; r++) regionRound(200_000 + r, regionNs);
const afterRegionChange = stats(regionNs);
const full = stats(ns.decision);
const build = stats(ns.build);
const amortized = stats(ns.amortized);
const old = stats(oldNs);
const ruleOnly = stats(ruleNs);
const candidatesPerState = candidatesPerStateOf(STATES);
const actions = { SPECULATE: 0, below_threshold: 0, zero_value: 0 };
round(0, undefined, actions);
const oldActions = { SPECULATE: 0, WAIT: 0 };
for (const st of STATES) for (const c of st.candidates) oldActions[oldDecision(c.id, st.frac).action]++;

// N_in is counted with the tokenizer on the prompt rendered with î; timed separately (per prompt).
const prompt = 'You are a support agent. Classify the following customer message and reply politely. '.repeat(25);
const tok = stats(
  Array.from({ length: 2000 }, () => {
    const t0 = now();
    sink += countTokens(prompt);
    return Number(now() - t0);
  }),
);

const pass = afterChange.p99Us <= P99_TARGET_US;
const result = {
  name: 'decision',
  command: 'node bench/decision/run.mjs',
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg(), node: process.version },
  dag: { nodes: dag.nodes.length, edges: dag.edges.length, makespanMs: criticalPath(cpInput).makespanMs, layers: LAYERS },
  states: STATES.length,
  candidatesPerState,
  samplesPerNode: buildAnalysis(STATES[0].nodesAt(0)).samples,
  rounds: ROUNDS,
  decisionsTimed: full.n,
  measured:
    'per round, every run state as a fresh state change (elapsed times jittered per round): its timing analysis built, then each candidate decided jointly with its siblings; decisionAfterStateChange charges the build to the first decision of the state',
  decisionAfterStateChange: afterChange,
  firstDecisionByFrontierLayer,
  decisionAfterRegionChange: afterRegionChange,
  fullDecision: full,
  analysisBuildPerState: build,
  amortizedPerDecision: amortized,
  oldPathCriticalPathPerDecision: old,
  ruleOnly,
  allocation,
  ratios: {
    decisionAfterStateChangeP99OverOldPathP99: afterChange.p99Us / old.p99Us,
    decisionP99OverOldPathP99: full.p99Us / old.p99Us,
    decisionOverRuleOnly: full.p50Us / ruleOnly.p50Us,
  },
  target: { metric: 'decisionAfterStateChange.p99Us', p99Us: P99_TARGET_US, pass },
  countTokens: { promptChars: prompt.length, promptTokens: countTokens(prompt), ...tok },
  actions,
  oldPathActions: oldActions,
  sink: Number.isFinite(sink),
};

const fmt = (s) => `p50 ${s.p50Us.toFixed(2)} µs  p99 ${s.p99Us.toFixed(2)} µs  (${Math.round(s.perSec).toLocaleString('en-US')}/s)`;
console.log(`decision bench: ${dag.nodes.length} nodes, ${dag.edges.length} edges, ${STATES.length} run states × ${candidatesPerState.toFixed(1)} candidates, ${full.n} decisions timed`);
console.log(`  decision after a state change     ${fmt(afterChange)}   target p99 ≤ ${P99_TARGET_US} µs: ${pass ? 'PASS' : 'FAIL'}`);
console.log(`    (the first decision of each state pays its analysis build; first decisions by frontier layer, p50/p99 µs:`);
console.log(
  `     ${Object.entries(firstDecisionByFrontierLayer)
    .map(([L, s]) => `${L} (${s.running} running, ${s.candidates} deciding) ${s.p50Us.toFixed(1)}/${s.p99Us.toFixed(1)}`)
    .join('; ')})`,
);
console.log(`  after a state change, part of the frontier started (waiting region rarely seen before) ${fmt(afterRegionChange)}`);
console.log(`  decision, analysis already built ${fmt(full)}`);
console.log(`  timing analysis, once per state  ${fmt(build)}`);
console.log(`  amortized per decision (state)   ${fmt(amortized)} (build + the state's decisions, per decision)`);
console.log(`  old path (CP per decision)       ${fmt(old)}`);
console.log(`  rule only                        ${fmt(ruleOnly)}`);
console.log(
  `  allocated (JS heap): analysis build ${Math.round(allocation.analysisBuildBytesPerState)} B/state, ΔT ${Math.round(allocation.deltaTBytesPerDecision)} B/decision, costs + rule ${Math.round(allocation.costsAndRuleBytesPerDecision)} B/decision`,
);
console.log(`  ratio: decision p99 / old path p99 = ${result.ratios.decisionP99OverOldPathP99.toFixed(2)}; decision / rule-only (p50) = ${result.ratios.decisionOverRuleOnly.toFixed(1)}x`);
console.log(`  countTokens (${prompt.length} chars, ${result.countTokens.promptTokens} tokens) ${fmt(tok)}`);
console.log(`  actions (M4 ΔT): ${JSON.stringify(actions)}; old path: ${JSON.stringify(oldActions)}`);
const out = join(here, '..', 'results', 'decision.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`  wrote ${out}`);
if (!pass) {
  console.error(`decision p99 after a state change ${afterChange.p99Us.toFixed(2)} µs is above the ${P99_TARGET_US} µs target`);
  process.exitCode = 1;
}
