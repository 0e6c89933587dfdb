/**
 * @gambit/replay: offline replay of recorded workflow runs through the method's decision core
 * (METHOD.md M9 stage 1, M11): the trace format and its reader, importers (tau-bench, OTLP/JSON),
 * the replay engine and its summaries, and the seeded workload archetypes.
 */
export * from './trace.js';
export * from './reader.js';
export * from './stats.js';
export * from './import/canonical.js';
export * from './import/tau-bench.js';
export * from './import/otlp.js';
export * from './engine/model.js';
export * from './engine/posteriors.js';
export * from './engine/schedule.js';
export * from './engine/replay.js';
export * from './engine/summary.js';
export * from './archetypes/index.js';
export * from './engine/estimates.js';
export * from './engine/records.js';
