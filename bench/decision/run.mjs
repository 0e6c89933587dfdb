// Decision-core benchmark (METHOD.md M1-M5, M8): how fast is one full speculation decision on a
// realistic 50-node DAG? A full decision = critical path over current duration estimates (M4) +
// ΔT + C_spec from the price table and C_fail with progressive validation (M2, M8) + the
// posterior point estimate (M5) + the rule (M4). Baselines measured in the same run: the
// critical path alone, and the rule alone (precomputed inputs), so the output says which part
// dominates. Deterministic inputs (seeded PRNG); timings are of this machine at this moment.
//
//   pnpm exec turbo run build && node bench/decision/run.mjs [--rounds N]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEPENDENCY_TYPES,
  countTokens,
  createPriceTable,
  criticalPath,
  decide,
  deltaTSec,
  expectedLlmDurationMs,
  latencyProfile,
  llmCostUsd,
  mulberry32,
  priorFor,
  progressiveFailCostUsd,
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

const rnd = mulberry32(2026);
const dag = buildDag(rnd);
const prices = createPriceTable();
const byId = new Map(dag.nodes.map((n) => [n.id, n]));
const preds = new Map(dag.nodes.map((n) => [n.id, []]));
for (const e of dag.edges) preds.get(e.to).push(e);
const cpInput = { nodes: dag.nodes.map((n) => ({ id: n.id, durationMs: n.durationMs })), edges: dag.edges };
const dial = { alpha: 0.5, lambdaUsdPerSec: 0.01 };
const flags = { admissible: true, killed: false, hasPrediction: true, budgetOk: true, speculationEnabled: true };

/** One full decision for the downstream of `edge`, while its upstreams are `elapsedFrac` done. */
function fullDecision(edge, elapsedFrac, sharedCp) {
  const cp = sharedCp ?? criticalPath(cpInput);
  const d = byId.get(edge.to);
  const pending = preds.get(edge.to);
  const ups = pending.map((e) => ({ remainingMs: byId.get(e.from).durationMs * (1 - elapsedFrac), p: 0 }));
  const upstreamRemainingMs = Math.max(...ups.map((u) => u.remainingMs));
  const dT = deltaTSec({ upstreamRemainingMs, downstreamDurationMs: d.durationMs, downstreamSlackMs: cp.byNode.get(d.id).slackMs });
  const rates = prices.rates(d.provider, d.model);
  const cSpec = llmCostUsd(rates, { inputTokens: d.inputTokens - d.cachedInputTokens, cachedInputTokens: d.cachedInputTokens, outputTokens: d.outputTokens });
  const decisionEdges = pending.map((e) => ({ posterior: e.posterior, mode: e.mode }));
  // C_fail needs each upstream's P; the rule recomputes P from the same posteriors.
  const lat = latencyProfile(d.model);
  for (let i = 0; i < ups.length; i++) ups[i].p = pending[i].posterior.a / (pending[i].posterior.a + pending[i].posterior.b);
  const cFail = progressiveFailCostUsd(
    { rates, inputTokens: d.inputTokens - d.cachedInputTokens, cachedInputTokens: d.cachedInputTokens, expectedOutputTokens: d.outputTokens, ttftMs: lat.ttftMs, tokensPerSec: lat.tokensPerSec },
    ups,
  );
  return decide({ edges: decisionEdges, cSpecUsd: cSpec, cFailUsd: cFail, deltaTSec: dT, dial, stage: 'online', flags });
}

function timeLoop(rounds, fn) {
  const samples = [];
  for (let r = 0; r < rounds; r++) {
    const frac = (r % 10) / 10;
    for (const e of dag.edges) {
      const t0 = process.hrtime.bigint();
      fn(e, frac);
      samples.push(Number(process.hrtime.bigint() - t0));
    }
  }
  return samples;
}

// Precomputed rule inputs, for the rule-only baseline.
const ruleInputs = new Map(
  dag.edges.map((e) => [e, { edges: preds.get(e.to).map((p) => ({ posterior: p.posterior, mode: p.mode })), cSpecUsd: 0.01, cFailUsd: 0.006, deltaTSec: 1.2, dial, stage: 'online', flags }]),
);

let sink = 0;
timeLoop(WARMUP_ROUNDS, (e, f) => {
  sink += fullDecision(e, f).evUsd;
  sink += criticalPath(cpInput).makespanMs;
  sink += decide(ruleInputs.get(e)).evUsd;
});
const full = stats(timeLoop(ROUNDS, (e, f) => (sink += fullDecision(e, f).evUsd)));
// Realistic variant: the scheduler recomputes the critical path once per state change (an
// upstream starts or finishes) and reuses it for every edge decided in that state.
let roundCp;
let lastFrac = -1;
const sharedCp = stats(
  timeLoop(ROUNDS, (e, f) => {
    if (f !== lastFrac || roundCp === undefined) {
      roundCp = criticalPath(cpInput);
      lastFrac = f;
    }
    sink += fullDecision(e, f, roundCp).evUsd;
  }),
);
const cpOnly = stats(timeLoop(ROUNDS, () => (sink += criticalPath(cpInput).makespanMs)));
const ruleOnly = stats(timeLoop(ROUNDS, (e) => (sink += decide(ruleInputs.get(e)).evUsd)));
const actions = { SPECULATE: 0, WAIT: 0 };
for (const e of dag.edges) actions[fullDecision(e, 0.3).action]++;

// N_in is counted with the tokenizer on the prompt rendered with î; timed separately (per prompt).
const prompt = 'You are a support agent. Classify the following customer message and reply politely. '.repeat(25);
const tok = stats(Array.from({ length: 2000 }, () => {
  const t0 = process.hrtime.bigint();
  sink += countTokens(prompt);
  return Number(process.hrtime.bigint() - t0);
}));

const result = {
  name: 'decision',
  command: 'node bench/decision/run.mjs',
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg(), node: process.version },
  dag: { nodes: dag.nodes.length, edges: dag.edges.length, makespanMs: criticalPath(cpInput).makespanMs, layers: LAYERS },
  rounds: ROUNDS,
  decisionsTimed: full.n,
  fullDecision: full,
  fullDecisionSharedCriticalPath: sharedCp,
  criticalPathOnly: cpOnly,
  ruleOnly,
  ratios: {
    criticalPathShareOfDecision: cpOnly.p50Us / full.p50Us,
    decisionOverRuleOnly: full.p50Us / ruleOnly.p50Us,
  },
  countTokens: { promptChars: prompt.length, promptTokens: countTokens(prompt), ...tok },
  actionsAtElapsed30pct: actions,
  sink: Number.isFinite(sink),
};

const fmt = (s) => `p50 ${s.p50Us.toFixed(2)} µs  p99 ${s.p99Us.toFixed(2)} µs  (${Math.round(s.perSec).toLocaleString('en-US')}/s)`;
console.log(`decision bench: ${dag.nodes.length} nodes, ${dag.edges.length} edges, makespan ${(result.dag.makespanMs / 1000).toFixed(1)} s, ${full.n} decisions timed`);
console.log(`  full decision      ${fmt(full)}`);
console.log(`  full, CP shared    ${fmt(sharedCp)}  (one critical path per state change, reused for all ${dag.edges.length} edges)`);
console.log(`  critical path only ${fmt(cpOnly)}`);
console.log(`  rule only          ${fmt(ruleOnly)}`);
console.log(`  ratio: critical path = ${(100 * result.ratios.criticalPathShareOfDecision).toFixed(0)}% of a decision (p50); decision / rule-only = ${result.ratios.decisionOverRuleOnly.toFixed(1)}x`);
console.log(`  countTokens (${prompt.length} chars, ${result.countTokens.promptTokens} tokens) ${fmt(tok)}`);
console.log(`  actions at 30% upstream progress: ${JSON.stringify(actions)}`);
const out = join(here, '..', 'results', 'decision.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`  wrote ${out}`);
