/** The method's decision core (METHOD.md M1-M8) as pure, typed functions. */
export * from './types.js';
export * from './money.js';
export * from './tokens.js';
export * from './pricing.js';
export * from './genai-prices.js';
export * from './snapshot-prices.js';
export * from './latency.js';
/** Log-histograms as data (M4): `Distribution.observe / merge / mean / quantile / survival / ...`. */
export * as Distribution from './distribution.js';
export { type LogHistogram, EMPTY_HISTOGRAM, histogramOf } from './distribution.js';
export * from './operation-class.js';
export * from './dial.js';
export * from './critical-path.js';
export * from './duration.js';
export * from './timing.js';
export * from './waste.js';
export * from './posterior.js';
export * from './priors.js';
export * from './predictive.js';
export * from './rule.js';
export * from './admissibility.js';
export * from './matching.js';
export * from './template.js';
export * from './prng.js';
export * from './tool-declarations.js';
