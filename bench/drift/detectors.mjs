// Drift detector accuracy (METHOD.md M9.5, issue 9 item 6): false alarms per stationary outcome
// at p = 0.05 … 0.95 and detection delay after a drop, for the live detector
// (`tailTestPrefix` with DEFAULT_CALIBRATION, the function the estimator and replay call) and,
// as the baseline in the same run, the detector it replaced (one 30-outcome window tested at
// 1e-5 against the posterior, plus Page-Hinkley δ = 0.05, λ = 15 as an alarm, window cap 200).
//
// Each simulated class keeps its window list exactly as the estimator does (capped at
// windowCap; an alarm empties it, as a kill and re-entry into shadow do). Seeded: the same
// numbers on every run.
//
// Tolerances (issue 9 "done when", set before measuring): ≤ 1e-5 false alarms per stationary
// outcome at every p; p99 detection within 50 outcomes of a drop of ≥ 0.3 from p ≥ 0.5.
import { betaBinomialCdf, DEFAULT_CALIBRATION, mulberry32, tailTestPrefix } from '@gambit/shared';

export const FA_RATES = [0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95];
export const DROPS = [
  [0.5, 0.2],
  [0.6, 0.3],
  [0.7, 0.4],
  [0.8, 0.5],
  [0.9, 0.6],
  [0.95, 0.65],
  [0.9, 0.2],
];
export const TOLERANCE = { falseAlarmsPerOutcome: 1e-5, detectionP99Outcomes: 50 };

/** The live detector: returns a step function over a running prefix-count array. */
function liveDetector() {
  const cfg = DEFAULT_CALIBRATION;
  return { windowCap: cfg.windowCap, alarm: (cum, start, end) => tailTestPrefix(cum, start, end, cfg.tail).alarm, state: () => null };
}

/** The replaced detector (before issue 9): posterior-referenced 30-window tail test + Page-Hinkley alarm. */
function oldDetector(prior) {
  const W = 30;
  const threshold = 1e-5;
  const ph = { delta: 0.05, lambda: 15, minN: 30 };
  let s = { n: 0, mean: 0, cum: 0, max: 0 };
  let a = prior.a;
  let b = prior.b;
  return {
    windowCap: 200,
    reset() {
      s = { n: 0, mean: 0, cum: 0, max: 0 };
      a = prior.a;
      b = prior.b;
    },
    alarm(cum, start, end) {
      const x = cum[end] - cum[end - 1];
      if (x === 1) a++;
      else b++;
      const n = s.n + 1;
      const mean = s.mean + (x - s.mean) / n;
      const c = s.cum + (x - mean + ph.delta);
      s = { n, mean, cum: c, max: Math.max(s.max, c) };
      if (n >= ph.minN && s.max - s.cum > ph.lambda) return true;
      if (end - start < W) return false;
      const h = cum[end] - cum[end - W];
      const before = { a: Math.max(1e-6, a - h), b: Math.max(1e-6, b - (W - h)) };
      return betaBinomialCdf(before, W, h) < threshold;
    },
  };
}

/** Runs one class for `steps` outcomes; calls onAlarm(t) and, unless it returns true, restarts the class. */
function runClass(det, seed, rate, steps, onAlarm) {
  const rnd = mulberry32(seed);
  const cum = new Int32Array(steps + 1);
  let base = 0;
  det.reset?.();
  for (let t = 0; t < steps; t++) {
    cum[t + 1] = cum[t] + (rnd() < rate(t) ? 1 : 0);
    const start = Math.max(base, t + 1 - det.windowCap);
    if (det.alarm(cum, start, t + 1)) {
      if (onAlarm(t)) return;
      base = t + 1;
      det.reset?.();
    }
  }
}

const quant = (sorted, f) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(f * sorted.length) - 1))];

/** Measures one detector factory. */
function measure(make, { classes, outcomesPerClass, dropTrials, history, horizon }) {
  const falseAlarms = [];
  for (const p of FA_RATES) {
    let alarms = 0;
    let killedClasses = 0;
    for (let c = 0; c < classes; c++) {
      let any = false;
      runClass(make(), 1_000_003 * (c + 1) + Math.round(p * 1000), () => p, outcomesPerClass, () => {
        alarms++;
        any = true;
        return false;
      });
      if (any) killedClasses++;
    }
    const outcomes = classes * outcomesPerClass;
    falseAlarms.push({ p, outcomes, alarms, perOutcome: alarms / outcomes, shareOfClassesKilled: killedClasses / classes });
  }
  const detection = [];
  for (const [pre, post] of DROPS) {
    const delays = [];
    let early = 0;
    for (let s = 0; s < dropTrials; s++) {
      let d = Number.POSITIVE_INFINITY;
      runClass(make(), 7 + 104_729 * s + Math.round(pre * 100), (t) => (t < history ? pre : post), history + horizon, (t) => {
        if (t < history) {
          early++;
          return false;
        }
        d = t - history + 1;
        return true;
      });
      delays.push(d);
    }
    delays.sort((x, y) => x - y);
    const missed = delays.filter((x) => !Number.isFinite(x)).length;
    detection.push({
      pre,
      post,
      trials: dropTrials,
      historyOutcomes: history,
      p50: quant(delays, 0.5),
      p90: quant(delays, 0.9),
      p99: quant(delays, 0.99),
      notDetectedWithin: { outcomes: horizon, count: missed },
      falseAlarmsBeforeDrop: early,
    });
  }
  return { falseAlarms, detection };
}

/** Lorden's asymptotic lower bound on the mean delay of any detector with ARL 1/fa: ln(1/fa) / KL(post‖pre). */
function lordenBound(pre, post, fa) {
  const kl = post * Math.log(post / pre) + (1 - post) * Math.log((1 - post) / (1 - pre));
  return Math.round((Math.log(1 / fa) / kl) * 10) / 10;
}

export function measureDetectors(opts = {}) {
  const o = { classes: 200, outcomesPerClass: 5000, dropTrials: 1000, history: 300, horizon: 600, ...opts };
  const t0 = performance.now();
  const live = measure(liveDetector, o);
  const tLive = performance.now() - t0;
  const old = measure(() => oldDetector({ a: 1, b: 1 }), o);
  const verdict = {
    falseAlarmsWithinTolerance: live.falseAlarms.every((r) => r.perOutcome <= TOLERANCE.falseAlarmsPerOutcome),
    detectionWithinTolerance: live.detection
      .filter((d) => d.pre >= 0.5 && d.pre - d.post >= 0.3 - 1e-9)
      .map((d) => ({ drop: `${d.pre}→${d.post}`, p99: d.p99, pass: d.p99 <= TOLERANCE.detectionP99Outcomes, lordenMeanDelayBound: lordenBound(d.pre, d.post, TOLERANCE.falseAlarmsPerOutcome) })),
  };
  return {
    config: { ...DEFAULT_CALIBRATION.tail, windowCap: DEFAULT_CALIBRATION.windowCap },
    method: o,
    tolerance: TOLERANCE,
    live,
    baselineOld: old,
    verdict,
    liveMs: Math.round(tLive),
  };
}
