// Net value of the EV rule on the real public workload (tau-bench airline, imported with its
// recorded tool calls and majority-vote guesses) and on the eight archetypes (issue 9's
// measurement; METHOD.md M3, M4, M9 stage 1, M11). For each workload: `never`, the `oracle`, and
// the EV rule at α ∈ {0, 0.5, 1} × λ ∈ {0.001, 0.003, 0.01, 0.03, 0.1} $/s, replayed with the
// live drift detector and kill (replay.ts) and per-class estimates (estimates.ts).
//
// Net value per run against never: NV = λ × (never's latency − policy's latency) in seconds
// − (policy's $ − never's $). The oracle speculates exactly on hits, so its latency and dollars do
// not depend on λ; its NV at each λ is the yardstick. Reported per workload: the EV rule's share
// of the oracle's NV at α = 1, λ = 0.01, and every grid point where the rule's NV is negative.
// A report, not a gate: the issue's gate is against a calibrated policy (see the report).
//
// Usage: node bench/policy/workloads.mjs [--runs 300] [--seed 1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadSnapshotPriceTable } from '@gambit/shared';
import { ARCHETYPES, importTauBench, loadTauBenchData, replay } from '../../packages/replay/dist/index.js';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}
const RUNS = arg('runs', 300);
const SEED = arg('seed', 1);
const ALPHAS = [0, 0.5, 1];
const LAMBDAS = [0.001, 0.003, 0.01, 0.03, 0.1];
const HEADLINE = { alpha: 1, lambda: 0.01 };
const prices = loadSnapshotPriceTable();

const meanOf = (runs, f) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
const round = (x, d = 4) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);

/** NV per run of `runs` against `never` at λ (dollars). */
function nvPerRun(runs, never, lambda) {
  const savedSec = (meanOf(never, (r) => r.durationMs) - meanOf(runs, (r) => r.durationMs)) / 1000;
  const extraUsd = (meanOf(runs, (r) => r.costNano) - meanOf(never, (r) => r.costNano)) / 1e9;
  return { nv: lambda * savedSec - extraUsd, savedSec, extraUsd };
}

const workloads = [
  { name: 'tau-bench-airline', source: 'sierra-research/tau-bench (MIT), imported', runs: () => importTauBench(loadTauBenchData()) },
  ...ARCHETYPES.map((a) => ({ name: a.name, source: 'archetype (synthetic, token sizes from Azure/Mooncake traces)', runs: () => a.generate({ seed: SEED, runs: RUNS }) })),
];

const out = [];
for (const w of workloads) {
  const runs = w.runs();
  const base = replay(runs, { policies: ['never', 'oracle'], dial: { alpha: 1, lambdaUsdPerSec: 0.01 }, prices });
  const never = base.policies.find((p) => p.policy === 'never').runs;
  const oracle = base.policies.find((p) => p.policy === 'oracle').runs;
  const neverUsdPerRun = meanOf(never, (r) => r.costNano) / 1e9;
  const grid = [];
  for (const alpha of ALPHAS)
    for (const lambda of LAMBDAS) {
      const r = replay(runs, { policies: ['ev'], dial: { alpha, lambdaUsdPerSec: lambda }, prices });
      const ev = r.policies[0].runs;
      const e = nvPerRun(ev, never, lambda);
      const o = nvPerRun(oracle, never, lambda);
      grid.push({
        alpha,
        lambda,
        evNvUsdPerRun: round(e.nv, 7),
        oracleNvUsdPerRun: round(o.nv, 7),
        nvShareOfOracle: o.nv > 0 ? round(e.nv / o.nv, 3) : null,
        evSavedSecPerRun: round(e.savedSec, 3),
        evExtraUsdPerRun: round(e.extraUsd, 7),
        speculations: ev.reduce((s, x) => s + x.speculations, 0),
        misses: ev.reduce((s, x) => s + x.misses, 0),
        kills: r.kills.length,
      });
    }
  const head = grid.find((g) => g.alpha === HEADLINE.alpha && g.lambda === HEADLINE.lambda);
  const negative = grid.filter((g) => g.evNvUsdPerRun < 0).map((g) => ({ alpha: g.alpha, lambda: g.lambda, nvUsdPerRun: g.evNvUsdPerRun, shareOfNeverUsd: round(g.evNvUsdPerRun / neverUsdPerRun, 4) }));
  const row = { workload: w.name, source: w.source, runs: runs.length, neverUsdPerRun: round(neverUsdPerRun, 6), headline: head, negativeAt: negative, grid };
  out.push(row);
  console.log(
    `${w.name.padEnd(20)} runs ${String(runs.length).padStart(4)}  α=1 λ=0.01: EV NV ${head.evNvUsdPerRun} $/run, oracle ${head.oracleNvUsdPerRun}, share ${head.nvShareOfOracle}` +
      `  | NV < 0 at ${negative.length}/${grid.length} grid points${negative.length > 0 ? ` (${negative.map((n) => `α${n.alpha} λ${n.lambda}`).join(', ')})` : ''}`,
  );
}
const reached80 = out.filter((r) => (r.headline.nvShareOfOracle ?? 0) >= 0.8).length;
const anyNegative = out.filter((r) => r.negativeAt.length > 0).length;
const summary = { workloads: out.length, reached80PctOfOracleAtAlpha1Lambda001: reached80, negativeNvSomewhereOnGrid: anyNegative };
console.log(JSON.stringify(summary));
const result = { benchmark: 'workloads', at: new Date().toISOString(), seed: SEED, runsPerArchetype: RUNS, alphas: ALPHAS, lambdas: LAMBDAS, summary, workloads: out };
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../results/workloads.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
