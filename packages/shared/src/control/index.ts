/** The control plane (M9.5): kill-switch state, heartbeat freshness, and the scheduler client. */
export * from './kill-state.js';
export * from './heartbeat.js';
export * from './class-state.js';
export * from './control-plane.js';
export * from '../redis/estimator-scripts.js';
