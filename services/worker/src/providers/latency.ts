/**
 * Latency profiles for the simulated provider: per model, time to first token and decode speed.
 * The default is the shared core's `latencyProfile` (core/model-profiles.json), the same table
 * the scheduler's duration estimates use, so a simulated call lasts what the planner expects:
 * ttftMs + 1000·outputTokens/tokensPerSec (`expectedLlmDurationMs`).
 */
import { type LatencyProfile, latencyProfile } from '@gambit/shared';

export type { LatencyProfile };

export type LatencyProfiles = (model: string) => LatencyProfile;

export const defaultLatencyProfiles: LatencyProfiles = (model) => latencyProfile(model);
