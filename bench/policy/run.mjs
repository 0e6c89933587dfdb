// Policy benchmark (METHOD.md M3, M4, M9 stage 1, M11): every workload archetype replayed under
// never, always, a fixed threshold (P ≥ 0.5), the EV rule at α ∈ {0, 0.5, 1} over a log-spaced
// λ sweep, and the oracle. Per archetype and policy: mean / p50 / p95 latency relative to
// `never` (the baseline measured in the same run), dollars per run, wasted dollars per run, the
// share of the oracle's saving captured and the Brier score of P, each with a seeded paired
// bootstrap 95% interval. Writes bench/results/policy.json, policy.md and one
// latency-versus-dollars SVG per archetype. Prices: the frozen snapshot (SnapshotPriceTable).
//
// Usage: node bench/policy/run.mjs [--runs 1000] [--seed 1] [--resamples 1000]
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadSnapshotPriceTable } from '@gambit/shared';
import { ARCHETYPES, headroom, replay, summarize } from '../../packages/replay/dist/index.js';
import { renderMarkdown } from './report.mjs';
import { bootstrapAll } from './stats.mjs';
import { latencyDollarSvg } from './svg.mjs';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

const RUNS = arg('runs', 1000);
const SEED = arg('seed', 1);
const RESAMPLES = arg('resamples', 1000);
const ALPHAS = [0, 0.5, 1];
const LAMBDAS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
const HEADROOM_DIAL = { alpha: 0.5, lambdaUsdPerSec: 0.01 };
const RESULTS = new URL('../results/', import.meta.url);

const prices = loadSnapshotPriceTable();
const t0 = performance.now();
const log = (msg) => process.stdout.write(`[policy ${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);

function columns(runs) {
  return {
    lat: Float64Array.from(runs, (r) => r.durationMs),
    usd: Float64Array.from(runs, (r) => r.costNano / 1e9),
    waste: Float64Array.from(runs, (r) => r.wasteNano / 1e9),
    brierSum: Float64Array.from(runs, (r) => r.brierSum),
    brierN: Float64Array.from(runs, (r) => r.brierN),
    speculations: runs.reduce((s, r) => s + r.speculations, 0),
    hits: runs.reduce((s, r) => s + r.hits, 0),
    misses: runs.reduce((s, r) => s + r.misses, 0),
  };
}

log(`${ARCHETYPES.length} archetypes × ${RUNS} runs (seed ${SEED}); EV at α ∈ {${ALPHAS}} × λ ∈ {${LAMBDAS}} $/s; ${RESAMPLES} bootstrap resamples`);
const archetypes = [];
for (const [ai, a] of ARCHETYPES.entries()) {
  const runs = a.generate({ seed: SEED, runs: RUNS });
  const base = replay(runs, { policies: ['never', 'always', 'threshold', 'oracle', 'ev'], dial: HEADROOM_DIAL, prices });
  const byPolicy = Object.fromEntries(base.policies.map((p) => [p.policy, p.runs]));
  const configs = [
    { policy: 'never', ...columns(byPolicy.never) },
    { policy: 'always', ...columns(byPolicy.always) },
    { policy: 'threshold', threshold: 0.5, ...columns(byPolicy.threshold) },
    { policy: 'oracle', ...columns(byPolicy.oracle) },
  ];
  for (const alpha of ALPHAS)
    for (const lambda of LAMBDAS) {
      const r = replay(runs, { policies: ['ev'], dial: { alpha, lambdaUsdPerSec: lambda }, prices });
      configs.push({ policy: 'ev', alpha, lambda, ...columns(r.policies[0].runs) });
    }
  const never = configs[0].lat;
  const oracle = configs[3].lat;
  const stats = bootstrapAll(configs, never, oracle, { seed: SEED * 7919 + ai, resamples: RESAMPLES });
  const summaries = summarize(base);
  const room = headroom(base, summaries);
  const entry = {
    name: a.name,
    description: a.description,
    designedHitRates: a.designedHitRates,
    runs: runs.length,
    neverMeanLatencyMs: summaries.find((s) => s.policy === 'never').meanLatencyMs,
    neverUsdPerRun: summaries.find((s) => s.policy === 'never').dollarsPerRun,
    refitPriors: base.refit,
    headroom: { dial: HEADROOM_DIAL, ...room },
    configs: configs.map((c, j) => ({
      policy: c.policy,
      ...(c.alpha !== undefined ? { alpha: c.alpha, lambdaUsdPerSec: c.lambda } : {}),
      ...(c.threshold !== undefined ? { pThreshold: c.threshold } : {}),
      speculations: c.speculations,
      hits: c.hits,
      misses: c.misses,
      ...stats[j],
    })),
  };
  archetypes.push(entry);
  const fixed = entry.configs.filter((c) => c.policy !== 'ev').map((c) => ({ policy: c.policy, usd: c.usdPerRun.value, rel: c.meanRel.value }));
  const ev = ALPHAS.map((alpha) => ({
    alpha,
    points: entry.configs.filter((c) => c.policy === 'ev' && c.alpha === alpha).map((c) => ({ lambda: c.lambdaUsdPerSec, usd: c.usdPerRun.value, rel: c.meanRel.value })),
  }));
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(new URL(`policy-${a.name}.svg`, RESULTS), latencyDollarSvg({ title: `${a.name}: latency vs dollars (${RUNS} runs)`, fixed, ev }));
  const evMid = entry.configs.find((c) => c.policy === 'ev' && c.alpha === 0.5 && c.lambdaUsdPerSec === 0.01);
  log(
    `${ai + 1}/${ARCHETYPES.length} ${a.name}: never ${(entry.neverMeanLatencyMs / 1000).toFixed(2)} s, $${entry.neverUsdPerRun.toFixed(5)}/run; ` +
      `oracle ×${entry.configs[3].meanRel.value.toFixed(3)}; EV(α=0.5, λ=0.01) ×${evMid.meanRel.value.toFixed(3)} ` +
      `[${evMid.meanRel.lo.toFixed(3)}, ${evMid.meanRel.hi.toFixed(3)}], waste $${evMid.wastedUsdPerRun.value.toFixed(6)}/run, ` +
      `captures ${evMid.oracleShare.value === null ? '-' : `${(100 * evMid.oracleShare.value).toFixed(0)}%`} of the oracle's saving`,
  );
}

const headline = archetypes.map((e) => {
  const ev = e.configs.find((c) => c.policy === 'ev' && c.alpha === 0.5 && c.lambdaUsdPerSec === 0.01);
  const oracle = e.configs.find((c) => c.policy === 'oracle');
  return `${e.name}: oracle latency ×${oracle.meanRel.value.toFixed(3)} of never; EV(α=0.5, λ=$0.01/s) ×${ev.meanRel.value.toFixed(3)} [${ev.meanRel.lo.toFixed(3)}, ${ev.meanRel.hi.toFixed(3)}] at $${ev.usdPerRun.value.toFixed(5)}/run (never $${e.neverUsdPerRun.toFixed(5)})`;
});
const result = {
  bench: 'policy',
  description: 'Offline replay of eight workload archetypes under speculation policies (latency relative to never, measured in the same run).',
  seed: SEED,
  runsPerArchetype: RUNS,
  bootstrapResamples: RESAMPLES,
  alphas: ALPHAS,
  lambdasUsdPerSec: LAMBDAS,
  prices: 'frozen snapshot llm_prices_snapshot_2026-11-28 (SnapshotPriceTable)',
  node: process.version,
  elapsedSec: Number(((performance.now() - t0) / 1000).toFixed(1)),
  headline,
  archetypes,
};
writeFileSync(new URL('policy.json', RESULTS), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(new URL('policy.md', RESULTS), renderMarkdown(result));
log(`wrote bench/results/policy.json, policy.md and ${archetypes.length} SVG plots`);
