// Live agreement benchmark (GitHub issue 6 item 5): do offline replay's predictions (M9 stage 1)
// match what the real services measure? For each archetype: N runs with speculation on and N
// off through scheduler + workers + estimator processes on the simulated provider (time-scaled),
// then replay of the same runs (see predict.mjs) with the same α, λ and price table; compares,
// per class, launches, hits, misses, waste and the rule's mean P and ΔT (issue 9), and per
// archetype the latency ratio on/off and dollars per run, against the tolerances in compare.mjs.
//
// Usage: node bench/agreement/run.mjs [--runs 40] [--scale 0.1] [--concurrency 8] [--warmup 4]
//          [--alpha 0.5] [--lambda 0.05] [--archetypes auto-reply,code-agent]
//          [--break-alpha A] [--break-lambda L] [--break-price F]   (replay only: a wrong α or λ, or
//          every model's rates × F; to show the checks fail) [--save-pairs FILE] (the live run views)
// Writes bench/results/agreement.json; exits non-zero if an archetype misses its tolerance.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createPriceTable } from '@gambit/shared';
import { startRedis, uniquePrefix } from '@gambit/testkit';
import { ARCHETYPES } from '../../packages/replay/dist/index.js';
import { CLASS_TOLERANCE, compare, compareClasses, formatClasses, formatTable, launchDivergence, ratioStdErr, TOLERANCE } from './compare.mjs';
import { attemptPrices, liveNodeDiagnostics, measure, runLive, schedulingOverhead } from './live.mjs';
import { predictFromArchetype, predictFromLive } from './predict.mjs';
import { startServices } from './stack.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
};

/** The services' price table with every model's rates × factor (a deliberately wrong price). */
function scaledPrices(factor) {
  const table = createPriceTable();
  const wrong = Object.create(table);
  wrong.rates = (provider, model) => {
    const r = table.rates(provider, model);
    return r === undefined ? undefined : { ...r, inputPerMTokUsd: r.inputPerMTokUsd * factor, cachedInputPerMTokUsd: r.cachedInputPerMTokUsd * factor, outputPerMTokUsd: r.outputPerMTokUsd * factor };
  };
  return wrong;
}

/** Runs the whole comparison against a Redis URL; used by run.mjs and test/agreement. */
export async function runAgreement(opts) {
  const services = await startServices({ redisUrl: opts.redisUrl, prefix: opts.prefix, workers: opts.workers ?? 2, timeScale: opts.timeScale });
  const rows = [];
  try {
    for (const a of opts.archetypes) {
      const t0 = performance.now();
      const workflow = a.workflow();
      const dial = { alpha: opts.alpha, lambdaUsdPerSec: opts.lambdaUsdPerSec };
      const pairs = await runLive(services.baseUrl, {
        adminKey: services.adminKey,
        tenant: `agr-${a.name}`,
        workflow,
        runs: opts.runs,
        concurrency: opts.concurrency,
        alpha: opts.alpha,
        lambdaUsdPerSec: opts.lambdaUsdPerSec,
        runTimeoutMs: opts.runTimeoutMs ?? 120_000,
        warmup: opts.warmup,
      });
      const m = measure(pairs, opts.timeScale, workflow);
      const measured = { ...m, latencyRatioSE: ratioStdErr(m.latOnSec, m.latOffSec), nodes: liveNodeDiagnostics(pairs), overhead: schedulingOverhead(workflow, pairs) };
      // `breakReplay` (a deliberate error on the replay side only, to show the checks fail): a
      // wrong α (`alpha`), a wrong λ (`lambdaUsdPerSec`) or every model's rates × `priceFactor`.
      const br = opts.breakReplay ?? {};
      const replayDial = { ...dial, ...(br.alpha !== undefined ? { alpha: br.alpha } : {}), ...(br.lambdaUsdPerSec !== undefined ? { lambdaUsdPerSec: br.lambdaUsdPerSec } : {}) };
      const predicted = predictFromLive(workflow, pairs, opts.timeScale, replayDial, br.priceFactor !== undefined ? scaledPrices(br.priceFactor) : undefined);
      const archetypeReplay = opts.archetypeRuns > 0 ? predictFromArchetype(a, opts.archetypeRuns, dial) : undefined;
      const classes = compareClasses(measured.nodes, predicted.nodes, opts.runs, attemptPrices(pairs));
      const overall = compare(measured, predicted);
      const classesPass = Object.values(classes).every((c) => c.pass);
      const comparison = { ...overall, classes, classesPass, pass: overall.pass && classesPass, launchDivergence: launchDivergence(measured.nodes, predicted.nodes, opts.runs) };
      const { latOnSec, latOffSec, costOnUsd, ...measuredSummary } = measured;
      const { perRunOnSec, ...predictedSummary } = predicted;
      rows.push({ archetype: a.name, measured: measuredSummary, predicted: predictedSummary, archetypeReplay, comparison, wallSec: (performance.now() - t0) / 1000, ...(opts.keepPairs ? { pairs } : {}) });
      opts.onProgress?.(`${a.name}: ${opts.runs} on + ${opts.runs} off in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await services.stop();
  }
  return rows;
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*bench\//, 'bench/'));
if (isMain) {
  const names = arg('archetypes', ARCHETYPES.map((a) => a.name).join(',')).split(',');
  const archetypes = names.map((n) => {
    const a = ARCHETYPES.find((x) => x.name === n);
    if (a === undefined) throw new Error(`unknown archetype ${n}`);
    return a;
  });
  // The live run views, to replay them again offline (predict.mjs) without re-running live.
  const savePairs = arg('save-pairs', undefined);
  const opts = {
    ...(savePairs !== undefined ? { keepPairs: true } : {}),
    runs: Number(arg('runs', '40')),
    timeScale: Number(arg('scale', '0.1')),
    concurrency: Number(arg('concurrency', '8')),
    alpha: Number(arg('alpha', '0.5')),
    lambdaUsdPerSec: Number(arg('lambda', '0.05')),
    archetypeRuns: Number(arg('archetype-runs', '500')),
    warmup: Number(arg('warmup', '4')),
    ...(['break-alpha', 'break-lambda', 'break-price'].some((b) => arg(b, undefined) !== undefined)
      ? {
          breakReplay: {
            ...(arg('break-alpha', undefined) !== undefined ? { alpha: Number(arg('break-alpha')) } : {}),
            ...(arg('break-lambda', undefined) !== undefined ? { lambdaUsdPerSec: Number(arg('break-lambda')) } : {}),
            ...(arg('break-price', undefined) !== undefined ? { priceFactor: Number(arg('break-price')) } : {}),
          },
        }
      : {}),
  };
  const redis = await startRedis();
  const t0 = performance.now();
  let rows;
  try {
    rows = await runAgreement({ ...opts, archetypes, redisUrl: redis.url, prefix: uniquePrefix('agr'), onProgress: (s) => process.stdout.write(`${s}\n`) });
  } finally {
    await redis.stop();
  }
  if (savePairs !== undefined) {
    writeFileSync(savePairs, JSON.stringify({ config: opts, rows: rows.map((r) => ({ archetype: r.archetype, pairs: r.pairs })) }));
    for (const r of rows) delete r.pairs;
  }
  process.stdout.write(`\n${formatTable(rows)}\n`);
  process.stdout.write('\narchetype replay (designed token/latency distributions, not the live workload):\n');
  for (const r of rows)
    process.stdout.write(
      `  ${r.archetype.padEnd(20)} ratio ${r.archetypeReplay.latencyRatio.toFixed(3)}  $/run on ${r.archetypeReplay.usdPerRunOn.toFixed(6)}  off ${r.archetypeReplay.usdPerRunOff.toFixed(6)}  mean off ${r.archetypeReplay.meanOffSec.toFixed(2)} s\n`,
    );
  process.stdout.write('\nper class, live/replay (tolerances in compare.mjs CLASS_TOLERANCE):\n');
  process.stdout.write(`${formatClasses(rows)}\n`);
  process.stdout.write('\nnodes whose launches differ between live and replay (> max(2, 10% of runs)):\n');
  for (const r of rows)
    for (const d of r.comparison.launchDivergence)
      process.stdout.write(`  ${r.archetype}/${d.node}: live ${d.liveLaunches}, replay ${d.replayLaunches}; live decisions ${JSON.stringify(d.liveDecisions)}\n`);
  const passed = rows.filter((r) => r.comparison.pass).length;
  const out = {
    headline: `${passed}/${rows.length} archetypes: replay from live config within tolerance (per class: launches, hits, misses ±max(${CLASS_TOLERANCE.countsMin}, ${100 * CLASS_TOLERANCE.countsFrac}% of runs), waste ±${CLASS_TOLERANCE.wasteShareOfAttemptPerMiss} attempt per miss, P ±${CLASS_TOLERANCE.pAbs}, ΔT ×/÷${CLASS_TOLERANCE.deltaTFactor}; latency ratio ±${TOLERANCE.latencyRatioAbs}, $/run on ±${100 * TOLERANCE.usdOnRel}%, off ±${100 * TOLERANCE.usdOffRel}%)`,
    config: { ...opts, workers: 2, archetypes: names },
    tolerance: TOLERANCE,
    classTolerance: CLASS_TOLERANCE,
    passed,
    total: rows.length,
    wallSec: (performance.now() - t0) / 1000,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
    archetypes: rows,
  };
  mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../results/agreement.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\n${out.headline}\nwrote bench/results/agreement.json\n`);
  if (passed < rows.length) process.exitCode = 1;
}
