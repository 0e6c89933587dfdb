/**
 * OpenTelemetry for every Gambit process: one tracer provider per process, an exporter chosen by
 * configuration (`otlp` over HTTP, `console`, `file` JSON lines, `none`), W3C context carried in
 * job data so one run is one trace across scheduler and workers, and the attribute names used on
 * spans (OpenTelemetry GenAI names where they exist, `gambit.*` for dollars and decisions).
 */
export * from './attributes.js';
export * from './setup.js';
export * from './propagation.js';
export * from './file-exporter.js';
