// Net value of the EV rule on the real public workload (tau-bench airline, imported with its
// recorded tool calls and majority-vote guesses) and on the eight archetypes (issue 9's
// measurement; METHOD.md M3, M4, M9 stage 1, M11). For each workload: `never`, the `oracle`, and
// the EV rule at α ∈ {0, 0.5, 1} × λ ∈ {0.001, 0.003, 0.01, 0.03, 0.1} $/s, replayed with the
// live drift detector and kill (replay.ts) and per-class estimates (estimates.ts).
//
// Net value per run against never: NV = λ × (never's latency − policy's latency) in seconds
// − (policy's $ − never's $). The oracle speculates exactly on hits, so its latency and dollars do
// not depend on λ. The calibrated policy is the EV rule knowing each class's true P (an
// archetype's designed rate; tau-bench's whole-sample rate per class) and each operation class's
// duration distribution over all runs: what a perfect learner can reach (issue 9's yardstick).
// Reported per workload: the EV rule's share of the oracle's NV at α = 1, λ = 0.01, every grid
// point where its NV is negative, and nvShareOfCalibrated with a paired-bootstrap 95% lower bound.
//
// Gates (issue 9 "done when", set before measuring), checked and printed; exit 1 when one fails:
//  - where the calibrated NV ≥ 1% of never's $/run: nvShareOfCalibrated ≥ 0.9 and its lower bound ≥ 0.85;
//  - at α ≤ 0.5: NV's lower bound ≥ −1% of never's $/run. (α = 1 takes zero-margin bets: reported.)
//
// Why 1,000 runs by default: the learner's cost is its transient (priors, the first outcomes of
// each class, the first 5 samples of each operation class), which a class pays once; and at
// 300 runs the paired-bootstrap lower bound at near-zero-NV grid points was wider than the gate's
// margin (code-agent α = 1, λ = 0.001: share 0.989, lower bound 0.62), so the gate measured the
// sample, not the rule. `--runs 300` still runs the shorter measurement.
//
// --suspect '<json>': the EV rule's drift-suspicion settings over the defaults (`calibration.suspect`,
// e.g. '{"drop":0}' off, '{"method":"changepoint","hazard":0.03}'): the frontier in docs/method.md M9.
// --only a,b: just these workloads (a quick look; the gates are judged on all). --out <path>: the
// result file (default bench/results/workloads.json). --sample-yardstick: see below.
//
// Usage: node bench/policy/workloads.mjs [--runs 1000] [--seed 1] [--resamples 400] [--suspect '<json>'] [--only a,b] [--out path]
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadSnapshotPriceTable, mulberry32 } from '@gambit/shared';
import { ARCHETYPES, classKey, importTauBench, loadTauBenchData, replay } from '../../packages/replay/dist/index.js';

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}
const RUNS = arg('runs', 1000);
const SEED = arg('seed', 1);
const RESAMPLES = arg('resamples', 400);
// --suspect '<json>': drift-suspicion settings over the defaults (calibration.suspect), for the frontier.
const SUSPECT = process.argv.includes('--suspect') ? JSON.parse(process.argv[process.argv.indexOf('--suspect') + 1]) : undefined;
const CALIBRATION = SUSPECT === undefined ? {} : { calibration: { suspect: SUSPECT } };
const ALPHAS = [0, 0.5, 1];
const LAMBDAS = [0.001, 0.003, 0.01, 0.03, 0.1];
const HEADLINE = { alpha: 1, lambda: 0.01 };
const prices = loadSnapshotPriceTable();

const meanOf = (runs, f) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
const round = (x, d = 4) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);

/** Per-run NV against never at λ (dollars), paired by run. */
const perRunNv = (runs, never, lambda) => runs.map((r, i) => (lambda * (never[i].durationMs - r.durationMs)) / 1000 - (r.costNano - never[i].costNano) / 1e9);

/** Paired bootstrap (seeded): 2.5% quantiles of mean(a), and of mean(a)/mean(b) when b is given. */
function bootstrap(a, b) {
  const rnd = mulberry32(SEED * 7919);
  const means = [];
  const ratios = [];
  const n = a.length;
  for (let k = 0; k < RESAMPLES; k++) {
    let sa = 0;
    let sb = 0;
    for (let j = 0; j < n; j++) {
      const i = Math.floor(rnd() * n);
      sa += a[i];
      if (b !== undefined) sb += b[i];
    }
    means.push(sa / n);
    if (b !== undefined) ratios.push(sb !== 0 ? sa / sb : Number.NaN);
  }
  const lo = (xs) => [...xs].filter((v) => Number.isFinite(v)).sort((p, q) => p - q)[Math.floor(0.025 * xs.length)] ?? Number.NaN;
  return { meanLo: lo(means), ratioLo: b === undefined ? undefined : lo(ratios) };
}

/** NV per run of `runs` against `never` at λ (dollars). */
function nvPerRun(runs, never, lambda) {
  const savedSec = (meanOf(never, (r) => r.durationMs) - meanOf(runs, (r) => r.durationMs)) / 1000;
  const extraUsd = (meanOf(runs, (r) => r.costNano) - meanOf(never, (r) => r.costNano)) / 1e9;
  return { nv: lambda * savedSec - extraUsd, savedSec, extraUsd };
}

/** True P per class: the whole-sample hit rate of each edge class (for a real trace). */
function sampleRates(runs) {
  const c = new Map();
  for (const run of runs)
    for (const o of run.opportunities) {
      if (o.guess === null) continue;
      const k = classKey(run, o);
      const x = c.get(k) ?? { h: 0, n: 0 };
      x.n++;
      if (o.matched) x.h++;
      c.set(k, x);
    }
  return (run, o) => {
    const x = c.get(classKey(run, o));
    return x === undefined ? undefined : x.h / x.n;
  };
}

const workloads = [
  { name: 'tau-bench-airline', source: 'sierra-research/tau-bench (MIT), imported', runs: () => importTauBench(loadTauBenchData()), knownP: sampleRates },
  ...ARCHETYPES.map((a) => ({
    name: a.name,
    source: 'archetype (synthetic, token sizes from Azure/Mooncake traces)',
    runs: () => a.generate({ seed: SEED, runs: RUNS }),
    knownP: () => (_run, o) => a.designedHitRates[`${o.from}->${o.to}`],
  })),
];
const failures = [];
// --only a,b: just these workloads (a quick look; the gates are judged on all of them).
// --sample-yardstick: also the share of a calibrated policy given each class's rate in this
// sample (what a perfect learner of this sample can reach; for tau-bench it is the calibrated
// policy itself), reported per grid point with its own gate check, which does not set the exit code.
const SAMPLE_YARDSTICK = process.argv.includes('--sample-yardstick');
const sampleFailures = [];
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : undefined;

const out = [];
for (const w of workloads) {
  if (ONLY !== undefined && !ONLY.includes(w.name)) continue;
  const runs = w.runs();
  const knownP = w.knownP(runs);
  const base = replay(runs, { policies: ['never', 'oracle'], dial: { alpha: 1, lambdaUsdPerSec: 0.01 }, prices });
  const never = base.policies.find((p) => p.policy === 'never').runs;
  const oracle = base.policies.find((p) => p.policy === 'oracle').runs;
  const neverUsdPerRun = meanOf(never, (r) => r.costNano) / 1e9;
  const grid = [];
  for (const alpha of ALPHAS)
    for (const lambda of LAMBDAS) {
      const r = replay(runs, { policies: ['ev'], dial: { alpha, lambdaUsdPerSec: lambda }, prices, ...CALIBRATION });
      const ev = r.policies[0].runs;
      const e = nvPerRun(ev, never, lambda);
      const o = nvPerRun(oracle, never, lambda);
      const calRuns = replay(runs, { policies: ['ev'], dial: { alpha, lambdaUsdPerSec: lambda }, prices, knownP, estimates: 'population' }).policies[0].runs;
      const c = nvPerRun(calRuns, never, lambda);
      const evNv = perRunNv(ev, never, lambda);
      const bs = bootstrap(evNv, perRunNv(calRuns, never, lambda));
      const shareCal = c.nv > 0 ? e.nv / c.nv : null;
      const gated = c.nv >= 0.01 * neverUsdPerRun;
      const checks = [];
      if (gated && (shareCal < 0.9 || bs.ratioLo < 0.85)) checks.push(`nvShareOfCalibrated ${round(shareCal, 3)} (lower bound ${round(bs.ratioLo, 3)}) < 0.9 / 0.85`);
      if (alpha <= 0.5 && bs.meanLo < -0.01 * neverUsdPerRun) checks.push(`NV lower bound ${round(bs.meanLo, 7)} < −1% of never's $/run`);
      for (const why of checks) failures.push(`${w.name} α=${alpha} λ=${lambda}: ${why}`);
      let sample;
      if (SAMPLE_YARDSTICK) {
        const sRuns = w.knownP === sampleRates ? calRuns : replay(runs, { policies: ['ev'], dial: { alpha, lambdaUsdPerSec: lambda }, prices, knownP: sampleRates(runs), estimates: 'population' }).policies[0].runs;
        const sc = nvPerRun(sRuns, never, lambda);
        const sbs = bootstrap(evNv, perRunNv(sRuns, never, lambda));
        const share = sc.nv > 0 ? e.nv / sc.nv : null;
        sample = { sampleCalibratedNvUsdPerRun: round(sc.nv, 7), nvShareOfSampleCalibrated: share === null ? null : round(share, 3), nvShareOfSampleCalibratedLower: round(sbs.ratioLo, 3) };
        if (sc.nv >= 0.01 * neverUsdPerRun && (share < 0.9 || sbs.ratioLo < 0.85))
          sampleFailures.push(`${w.name} α=${alpha} λ=${lambda}: nvShareOfSampleCalibrated ${round(share, 3)} (lower bound ${round(sbs.ratioLo, 3)}) < 0.9 / 0.85`);
      }
      grid.push({
        alpha,
        lambda,
        evNvUsdPerRun: round(e.nv, 7),
        evNvLowerUsdPerRun: round(bs.meanLo, 7),
        oracleNvUsdPerRun: round(o.nv, 7),
        calibratedNvUsdPerRun: round(c.nv, 7),
        nvShareOfOracle: o.nv > 0 ? round(e.nv / o.nv, 3) : null,
        nvShareOfCalibrated: shareCal === null ? null : round(shareCal, 3),
        nvShareOfCalibratedLower: bs.ratioLo === undefined ? null : round(bs.ratioLo, 3),
        gatedOnCalibrated: gated,
        pass: checks.length === 0,
        evSavedSecPerRun: round(e.savedSec, 3),
        evExtraUsdPerRun: round(e.extraUsd, 7),
        speculations: ev.reduce((s, x) => s + x.speculations, 0),
        misses: ev.reduce((s, x) => s + x.misses, 0),
        kills: r.kills.length,
        ...(sample ?? {}),
      });
    }
  const head = grid.find((g) => g.alpha === HEADLINE.alpha && g.lambda === HEADLINE.lambda);
  const negative = grid.filter((g) => g.evNvUsdPerRun < 0).map((g) => ({ alpha: g.alpha, lambda: g.lambda, nvUsdPerRun: g.evNvUsdPerRun, shareOfNeverUsd: round(g.evNvUsdPerRun / neverUsdPerRun, 4) }));
  const row = { workload: w.name, source: w.source, runs: runs.length, neverUsdPerRun: round(neverUsdPerRun, 6), headline: head, negativeAt: negative, grid };
  out.push(row);
  console.log(
    `${w.name.padEnd(20)} runs ${String(runs.length).padStart(4)}  α=1 λ=0.01: EV NV ${head.evNvUsdPerRun} $/run, oracle ${head.oracleNvUsdPerRun} (share ${head.nvShareOfOracle}), calibrated ${head.calibratedNvUsdPerRun} (share ${head.nvShareOfCalibrated}, lower ${head.nvShareOfCalibratedLower})` +
      `  | NV < 0 at ${negative.length}/${grid.length} grid points${negative.length > 0 ? ` (${negative.map((n) => `α${n.alpha} λ${n.lambda}`).join(', ')})` : ''}`,
  );
}
const reached80 = out.filter((r) => (r.headline.nvShareOfOracle ?? 0) >= 0.8).length;
const anyNegative = out.filter((r) => r.negativeAt.length > 0).length;
const summary = { workloads: out.length, reached80PctOfOracleAtAlpha1Lambda001: reached80, negativeNvSomewhereOnGrid: anyNegative, gateFailures: failures.length };
console.log(JSON.stringify(summary));
for (const f of failures) console.log(`FAIL ${f}`);
if (SAMPLE_YARDSTICK) {
  console.log(`against the sample's rates (reported, not a gate): ${sampleFailures.length} failures`);
  for (const f of sampleFailures) console.log(`  sample yardstick: ${f}`);
}
if (failures.length > 0) process.exitCode = 1;
const result = { benchmark: 'workloads', at: new Date().toISOString(), seed: SEED, ...(SUSPECT === undefined ? {} : { suspect: SUSPECT }), ...(SAMPLE_YARDSTICK ? { sampleYardstickFailures: sampleFailures } : {}), runsPerArchetype: RUNS, resamples: RESAMPLES, alphas: ALPHAS, lambdas: LAMBDAS, summary, failures, workloads: out };
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
// --out <path>: write the result there instead (frontier runs side by side).
const OUT = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : new URL('../results/workloads.json', import.meta.url);
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
