// Tolerances and the comparison of measured (live) vs predicted (replay) numbers per archetype.
//
// Tolerances, stated before measuring (docs/benchmarks.md justifies them):
//  - latency ratio on/off: |predicted − measured| ≤ 0.10 (10 percentage points);
//  - dollars per run with speculation on: within 15% of measured;
//  - dollars per run with speculation off: within 2% (same tokens, same price table: only
//    nano-dollar rounding may differ).
// The bootstrap standard error of the measured ratio is reported beside it, so a reader can see
// that 0.10 is several standard errors wide at the benchmark's run counts.
export const TOLERANCE = { latencyRatioAbs: 0.1, usdOnRel: 0.15, usdOffRel: 0.02 };

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bootstrap SE of mean(on)/mean(off) over paired runs (seeded). */
export function ratioStdErr(latOn, latOff, rounds = 1000) {
  const rng = mulberry32(7);
  const n = latOn.length;
  const rs = [];
  for (let b = 0; b < rounds; b++) {
    let so = 0;
    let sf = 0;
    for (let k = 0; k < n; k++) {
      const j = Math.floor(rng() * n);
      so += latOn[j];
      sf += latOff[j];
    }
    rs.push(so / sf);
  }
  const m = rs.reduce((a, b) => a + b, 0) / rounds;
  return Math.sqrt(rs.reduce((a, r) => a + (r - m) ** 2, 0) / (rounds - 1));
}

const rel = (pred, meas) => (meas === 0 ? (pred === 0 ? 0 : Number.POSITIVE_INFINITY) : (pred - meas) / meas);

export function compare(measured, predicted, tol = TOLERANCE) {
  const ratioDiff = predicted.latencyRatio - measured.latencyRatio;
  const usdOnRel = rel(predicted.usdPerRunOn, measured.usdPerRunOn);
  const usdOffRel = rel(predicted.usdPerRunOff, measured.usdPerRunOff);
  const checks = {
    latencyRatio: Math.abs(ratioDiff) <= tol.latencyRatioAbs,
    usdPerRunOn: Math.abs(usdOnRel) <= tol.usdOnRel,
    usdPerRunOff: Math.abs(usdOffRel) <= tol.usdOffRel,
  };
  return { ratioDiff, usdOnRel, usdOffRel, checks, pass: Object.values(checks).every(Boolean) };
}

/**
 * Nodes whose speculative launches differ between live and replay by more than
 * max(2, 10% of runs): a difference in behaviour (which decisions are made), reported beside the
 * pass/fail checks because the latency tolerance alone can absorb one (docs/benchmarks.md).
 */
export function launchDivergence(liveNodes, replayNodes, runs) {
  const out = [];
  for (const id of new Set([...Object.keys(liveNodes), ...Object.keys(replayNodes)])) {
    const live = liveNodes[id]?.launched ?? 0;
    const rep = replayNodes[id]?.launched ?? 0;
    if (Math.abs(live - rep) > Math.max(2, 0.1 * runs)) out.push({ node: id, liveLaunches: live, replayLaunches: rep, liveDecisions: liveNodes[id]?.decisions ?? {} });
  }
  return out;
}

export function formatTable(rows) {
  const head = ['archetype', 'off s', 'on s', 'ratio meas', '±SE', 'ratio pred', 'Δ', '$/run on meas', '$/run on pred', 'Δ%', '$/run off Δ%', 'waste $/run', 'spec', 'hits', 'pred spec/hits', 'ok'];
  const body = rows.map((r) => [
    r.archetype,
    r.measured.meanOffSec.toFixed(2),
    r.measured.meanOnSec.toFixed(2),
    r.measured.latencyRatio.toFixed(3),
    r.measured.latencyRatioSE.toFixed(3),
    r.predicted.latencyRatio.toFixed(3),
    `${r.comparison.ratioDiff >= 0 ? '+' : ''}${r.comparison.ratioDiff.toFixed(3)}`,
    `$${r.measured.usdPerRunOn.toFixed(6)}`,
    `$${r.predicted.usdPerRunOn.toFixed(6)}`,
    `${(100 * r.comparison.usdOnRel).toFixed(1)}%`,
    `${(100 * r.comparison.usdOffRel).toFixed(2)}%`,
    `$${r.measured.wastedUsdPerRun.toFixed(6)}`,
    String(r.measured.speculations),
    String(r.measured.hits),
    `${r.predicted.speculations}/${r.predicted.hits}`,
    r.comparison.pass ? 'yes' : 'NO',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n');
}
