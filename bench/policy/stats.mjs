// Per-run statistics of a policy relative to `never`, with seeded paired-bootstrap 95% intervals:
// each resample draws run indices with replacement and every statistic is computed on the
// same indices for the policy, `never` and the oracle (ratios stay paired).
import { mulberry32 } from '../../packages/replay/dist/index.js';

function quantileSorted(s, q) {
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** cols: {lat, usd, waste, brierSum, brierN} Float64Arrays per config, plus never and oracle latencies. */
function statsAt(idx, c, never, oracle) {
  const n = idx.length;
  const lat = new Float64Array(n);
  const nl = new Float64Array(n);
  let sl = 0;
  let sn = 0;
  let so = 0;
  let usd = 0;
  let waste = 0;
  let bs = 0;
  let bn = 0;
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    lat[k] = c.lat[i];
    nl[k] = never[i];
    sl += c.lat[i];
    sn += never[i];
    so += oracle[i];
    usd += c.usd[i];
    waste += c.waste[i];
    bs += c.brierSum[i];
    bn += c.brierN[i];
  }
  lat.sort();
  nl.sort();
  const saving = sn - so;
  return {
    meanRel: sl / sn,
    p50Rel: quantileSorted(lat, 0.5) / quantileSorted(nl, 0.5),
    p95Rel: quantileSorted(lat, 0.95) / quantileSorted(nl, 0.95),
    usdPerRun: usd / n,
    wastedUsdPerRun: waste / n,
    oracleShare: saving > 0 ? (sn - sl) / saving : Number.NaN,
    brier: bn > 0 ? bs / bn : Number.NaN,
  };
}

export const STAT_KEYS = ['meanRel', 'p50Rel', 'p95Rel', 'usdPerRun', 'wastedUsdPerRun', 'oracleShare', 'brier'];

/** Point estimates and bootstrap intervals for every config, sharing each resample's indices. */
export function bootstrapAll(configs, never, oracle, { seed, resamples }) {
  const n = never.length;
  const all = Array.from({ length: n }, (_, i) => i);
  const point = configs.map((c) => statsAt(all, c, never, oracle));
  const draws = configs.map(() => Object.fromEntries(STAT_KEYS.map((k) => [k, []])));
  const rng = mulberry32(seed);
  const idx = new Int32Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rng() * n);
    configs.forEach((c, j) => {
      const s = statsAt(idx, c, never, oracle);
      for (const k of STAT_KEYS) if (Number.isFinite(s[k])) draws[j][k].push(s[k]);
    });
  }
  return configs.map((_, j) =>
    Object.fromEntries(
      STAT_KEYS.map((k) => {
        const d = draws[j][k].sort((a, b) => a - b);
        const v = point[j][k];
        return [k, { value: Number.isFinite(v) ? v : null, lo: d.length > 0 ? quantileSorted(d, 0.025) : null, hi: d.length > 0 ? quantileSorted(d, 0.975) : null }];
      }),
    ),
  );
}
