/**
 * Per-model latency profiles (duration estimates for M4's critical path and ΔT, and for the
 * simulated provider): duration = ttft + 1000 * outputTokens / tokensPerSec. The figures live
 * in one configuration file, `core/model-profiles.json` (copied to dist by the build), read
 * once at module load; the functions are pure given a profile table.
 */
import { readFileSync } from 'node:fs';
import { ValidationError } from '../errors.js';

export interface LatencyProfile {
  readonly ttftMs: number;
  readonly tokensPerSec: number;
}

export interface ModelProfiles {
  readonly profiles: Readonly<Record<string, LatencyProfile>> & { readonly default: LatencyProfile };
}

/** Validates a profile file's content; throws ValidationError naming the model and field. */
export function parseModelProfiles(raw: unknown): ModelProfiles {
  const profiles = (raw as { profiles?: unknown } | null)?.profiles;
  if (typeof profiles !== 'object' || profiles === null)
    throw new ValidationError([{ path: 'profiles', message: 'must be an object of model → {ttftMs, tokensPerSec}' }]);
  const issues: { path: string; message: string }[] = [];
  for (const [model, p] of Object.entries(profiles as Record<string, Partial<LatencyProfile>>)) {
    if (!(typeof p?.ttftMs === 'number' && p.ttftMs >= 0))
      issues.push({ path: `profiles.${model}.ttftMs`, message: 'must be a number ≥ 0' });
    if (!(typeof p?.tokensPerSec === 'number' && p.tokensPerSec > 0))
      issues.push({ path: `profiles.${model}.tokensPerSec`, message: 'must be a number > 0' });
  }
  if (!('default' in profiles)) issues.push({ path: 'profiles.default', message: 'a default profile is required' });
  if (issues.length > 0) throw new ValidationError(issues);
  return { profiles: profiles as ModelProfiles['profiles'] };
}

/** Reads and validates a profile file (default: the one shipped beside this module). */
export function loadModelProfiles(path: string | URL = new URL('./model-profiles.json', import.meta.url)): ModelProfiles {
  return parseModelProfiles(JSON.parse(readFileSync(path, 'utf8')));
}

export const DEFAULT_MODEL_PROFILES: ModelProfiles = loadModelProfiles();

/**
 * The profile of a model: exact name, then without a `provider/` prefix, then the longest
 * profile name that prefixes it (`gpt-5-mini-2025-08-07` → `gpt-5-mini`), else `default`.
 */
export function latencyProfile(model: string, table: ModelProfiles = DEFAULT_MODEL_PROFILES): LatencyProfile {
  const p = table.profiles;
  const name = model.includes('/') ? model.slice(model.lastIndexOf('/') + 1) : model;
  const exact = p[model] ?? p[name];
  if (exact !== undefined) return exact;
  let best: string | undefined;
  for (const key of Object.keys(p)) {
    if (key !== 'default' && name.startsWith(key) && (best === undefined || key.length > best.length)) best = key;
  }
  return (best !== undefined ? p[best] : undefined) ?? p.default;
}

/** Expected duration of an LLM call in ms: ttft + 1000 * outputTokens / tokensPerSec. */
export function expectedLlmDurationMs(
  model: string,
  outputTokens: number,
  table: ModelProfiles = DEFAULT_MODEL_PROFILES,
): number {
  const { ttftMs, tokensPerSec } = latencyProfile(model, table);
  return ttftMs + (1000 * outputTokens) / tokensPerSec;
}
