/**
 * M5 (the probability): Beta priors keyed by dependency type, the Beta posterior of an edge
 * class, its point estimate (mean or a lower credible bound) and credible interval, and the
 * method-of-moments refit of a type's prior from per-class counts (M9 offline replay).
 * The Beta-Binomial predictive distribution is in predictive.ts.
 */
import jstat from 'jstat';
import { ValidationError } from '../errors.js';
import type { BetaParams, DependencyType, PosteriorMode } from './types.js';

/** M5 default priors (router_k_way is Beta(1, k − 1), see priorFor). */
export const DEFAULT_PRIORS: Readonly<Record<Exclude<DependencyType, 'router_k_way'>, BetaParams>> = {
  passthrough: { a: 9, b: 1 },
  lookup: { a: 8, b: 2 },
  validation_gate: { a: 8, b: 2 },
  structured_extract: { a: 4, b: 3 },
  tool_args: { a: 2, b: 5 },
  free_text: { a: 1, b: 19 },
};

export type PriorOverrides = Partial<Readonly<Record<DependencyType, BetaParams>>>;

function checkBeta(beta: BetaParams, path: string): void {
  if (!(beta.a > 0 && beta.b > 0 && Number.isFinite(beta.a) && Number.isFinite(beta.b)))
    throw new ValidationError([{ path, message: `Beta parameters must be finite and > 0, got (${beta.a}, ${beta.b})` }]);
}

/** M5: the prior of a dependency type; `router_k_way` needs k (Beta(1, k − 1), mean 1/k). */
export function priorFor(type: DependencyType, k?: number, overrides?: PriorOverrides): BetaParams {
  const o = overrides?.[type];
  if (o !== undefined) {
    checkBeta(o, `priors.${type}`);
    return o;
  }
  if (type === 'router_k_way') {
    if (k === undefined || !Number.isInteger(k) || k < 2)
      throw new ValidationError([{ path: 'k', message: `router_k_way needs an integer k ≥ 2, got ${String(k)}` }]);
    return { a: 1, b: k - 1 };
  }
  return DEFAULT_PRIORS[type];
}

/** M5: Beta(a + hits, b + misses). */
export function updatePosterior(prior: BetaParams, hits: number, misses: number): BetaParams {
  if (!(hits >= 0 && misses >= 0))
    throw new ValidationError([{ path: hits >= 0 ? 'misses' : 'hits', message: 'counts must be ≥ 0' }]);
  return { a: prior.a + hits, b: prior.b + misses };
}

export function betaMean(beta: BetaParams): number {
  return beta.a / (beta.a + beta.b);
}

/**
 * Quantiles already computed, by q, a, then b (numeric keys, no key string per read): a class's
 * posterior changes once per outcome while every decision on its edges reads the same lower
 * bound (M5 `lower_bound` mode), and the inverse incomplete beta costs microseconds. Bounded:
 * cleared when full.
 */
const quantiles = new Map<number, Map<number, Map<number, number>>>();
let quantilesHeld = 0;
const QUANTILE_MEMO = 4096;

/** Quantile q of Beta(a, b). */
export function betaQuantile(beta: BetaParams, q: number): number {
  if (q <= 0) return 0;
  if (q >= 1) return 1;
  let byA = quantiles.get(q);
  let byB = byA?.get(beta.a);
  let v = byB?.get(beta.b);
  if (v === undefined) {
    v = jstat.beta.inv(q, beta.a, beta.b) as number;
    if (quantilesHeld >= QUANTILE_MEMO) {
      quantiles.clear();
      quantilesHeld = 0;
      byA = undefined;
      byB = undefined;
    }
    if (byA === undefined) {
      byA = new Map();
      quantiles.set(q, byA);
    }
    if (byB === undefined) {
      byB = new Map();
      byA.set(beta.a, byB);
    }
    byB.set(beta.b, v);
    quantilesHeld++;
  }
  return v;
}

/** M5: P read off a posterior: its mean, or a lower credible bound (the `quantile` quantile). */
export function pointEstimate(beta: BetaParams, mode: PosteriorMode = { kind: 'mean' }): number {
  if (mode.kind === 'mean') return betaMean(beta);
  if (!(mode.quantile > 0 && mode.quantile < 1))
    throw new ValidationError([{ path: 'mode.quantile', message: `must be in (0, 1), got ${mode.quantile}` }]);
  return betaQuantile(beta, mode.quantile);
}

/** Equal-tailed credible interval holding `level` of the posterior mass. */
export function credibleInterval(beta: BetaParams, level = 0.95): { lo: number; hi: number } {
  const tail = (1 - level) / 2;
  return { lo: betaQuantile(beta, tail), hi: betaQuantile(beta, 1 - tail) };
}

export interface ClassCounts {
  readonly hits: number;
  readonly misses: number;
}

export interface RefitOptions {
  /** Returned when no class has any outcome; its a + b is the concentration used with one class. */
  readonly fallback?: BetaParams;
  readonly minConcentration?: number;
  readonly maxConcentration?: number;
}

/**
 * M9: refit a type's prior from per-class counts by the method of moments on the class hit
 * rates r_i = h_i / n_i. The mean is the pooled rate m = Σh / Σn. The spread of the true rates
 * is the observed variance of r_i minus the binomial noise: v_b = Var(r_i) − mean(m(1−m)/n_i);
 * then a + b = m(1−m)/v_b − 1, clamped to [min, max] concentration (v_b ≤ 0 → max: the classes
 * look alike). Fallbacks: no data → `fallback` (default Beta(1, 1)); one class → its pooled
 * mean with the fallback's concentration. m is kept off 0 and 1 so a and b stay positive.
 */
export function refitPrior(perClassCounts: readonly ClassCounts[], opts: RefitOptions = {}): BetaParams {
  const fallback = opts.fallback ?? { a: 1, b: 1 };
  const minC = opts.minConcentration ?? 2;
  const maxC = opts.maxConcentration ?? 1000;
  const classes = perClassCounts.filter((c) => c.hits + c.misses > 0);
  if (classes.length === 0) return fallback;
  const totalN = classes.reduce((s, c) => s + c.hits + c.misses, 0);
  const totalH = classes.reduce((s, c) => s + c.hits, 0);
  const eps = 0.5 / (totalN + 1);
  const m = Math.min(1 - eps, Math.max(eps, totalH / totalN));
  let concentration = fallback.a + fallback.b;
  if (classes.length >= 2) {
    const rates = classes.map((c) => c.hits / (c.hits + c.misses));
    const mu = rates.reduce((s, r) => s + r, 0) / rates.length;
    const varObs = rates.reduce((s, r) => s + (r - mu) ** 2, 0) / (rates.length - 1);
    const noise = classes.reduce((s, c) => s + (m * (1 - m)) / (c.hits + c.misses), 0) / classes.length;
    const vb = varObs - noise;
    concentration = vb <= 0 ? maxC : (m * (1 - m)) / vb - 1;
  }
  concentration = Math.min(maxC, Math.max(minC, concentration));
  return { a: m * concentration, b: (1 - m) * concentration };
}
