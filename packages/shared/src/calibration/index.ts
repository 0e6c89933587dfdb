/** Calibration (M5, M9): drift detectors, the stage machine and its gates, canary sampling. Pure. */
// beta.ts stays internal: core/predictive.ts owns the exported Beta-Binomial API.
export * from './bound.js';
export * from './detectors.js';
export * from './config.js';
export * from './canary.js';
export * from './stages.js';
export * from './suspect.js';
