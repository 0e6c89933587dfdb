/**
 * Latency profiles for the simulated provider: per model, time to first token and decode speed.
 * The registry is handed a `LatencyProfiles` function (the shared core's `latencyProfile`
 * when wired by the worker's composition root); this default is the fallback.
 */
export interface LatencyProfile {
  readonly ttftMs: number;
  readonly tokensPerSec: number;
}

export type LatencyProfiles = (model: string) => LatencyProfile;

/** A mid-size hosted model: 500 ms to first token, 60 tokens/s. */
export const defaultLatencyProfiles: LatencyProfiles = () => ({ ttftMs: 500, tokensPerSec: 60 });
