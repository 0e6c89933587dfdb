/**
 * OpenTelemetry for every Gambit process (issue 12 items 1 and 4): one tracer and one meter
 * provider per process configured from the standard OTEL_* variables (config.ts, setup.ts), the
 * `Metrics` interface components are given (metrics.ts), the ops listener with /metrics, /healthz
 * and /readyz (ops-server.ts, health.ts), the run span that lasts the run across processes
 * (run-span.ts), W3C context carried in job data (propagation.ts), OTLP/JSON-lines file export
 * (file-exporter.ts), and the attribute and span names (GenAI conventions where they exist).
 */
export * from './attributes.js';
export * from './config.js';
export * from './setup.js';
export * from './metrics.js';
export * from './gauges.js';
export * from './health.js';
export * from './ops-server.js';
export * from './run-span.js';
export * from './propagation.js';
export * from './file-exporter.js';
