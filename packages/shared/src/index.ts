/**
 * @gambit/shared: the method as pure functions, the schemas of everything that crosses a
 * process boundary, typed errors, and the Clock and Logger interfaces (ARCHITECTURE.md).
 * Redis keys and scripts are under `@gambit/shared/redis`; OpenTelemetry under `./telemetry`.
 */
export * from './errors.js';
export * from './clock.js';
export * from './logger.js';
export * from './core/index.js';
export * from './schemas/workflow.js';
export * from './schemas/records.js';
export * from './schemas/jobs.js';
export * from './schemas/env.js';
export * from './schemas/http.js';
export * from './schemas/priors.js';
export * from './providers/types.js';
export * from './calibration/index.js';
export * from './control/index.js';
export * from './schemas/platform.js';
