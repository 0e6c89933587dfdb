/**
 * The estimator's configuration: the only module that reads `process.env` (STYLE.md 1), parsed
 * once with zod into a complete, validated object. An invalid variable stops the process at
 * start with the variable named.
 */
import { hostname } from 'node:os';
import { CalibrationOverridesSchema, ClusterNodesSchema, envInt, envJson, KeyPrefixSchema, OutcomeShardsSchema, RedisAuthEnvShape, ValidationError, zodIssues } from '@gambit/shared';
import { OpsEnvShape, type TelemetryConfig, TelemetryEnvShape, telemetryConfigFromEnv } from '@gambit/shared/telemetry';
import { z } from 'zod';
import { DEFAULT_DEDUPE_WINDOW_MS, MIN_DEDUPE_WINDOW_MS } from './dedupe-horizon.js';

/** Every variable the estimator reads (docs/configuration.md is checked against this). */
export const EnvSchema = z.object({
  ...OpsEnvShape,
  ...TelemetryEnvShape,
  /** Cardinality cap of the per-class posterior gauges (the classes with the most outcomes). */
  GAMBIT_METRICS_MAX_CLASSES: envInt(50, 0),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  ...RedisAuthEnvShape,
  /** Comma-separated host:port seeds; when set, the estimator talks to a Redis Cluster. */
  REDIS_CLUSTER_NODES: ClusterNodesSchema.optional(),
  GAMBIT_PREFIX: KeyPrefixSchema,
  /** Issue 13 item 4: outcome stream shards (keys.ts outcomeStreams); the same value on every scheduler and estimator. */
  GAMBIT_OUTCOME_SHARDS: OutcomeShardsSchema,
  ESTIMATOR_ID: z.string().min(1).optional(),
  /** Entries read per XREADGROUP / XAUTOCLAIM call: one script per class and one XACK per batch (a larger batch spreads each script call's fixed cost over more outcomes). */
  ESTIMATOR_BATCH: envInt(500, 1),
  /** XREADGROUP BLOCK: how long one read waits for new entries. */
  ESTIMATOR_BLOCK_MS: envInt(500, 1),
  /** An entry pending this long (its estimator died or hangs) is taken over with XAUTOCLAIM. */
  ESTIMATOR_CLAIM_IDLE_MS: envInt(10_000, 1),
  ESTIMATOR_CLAIM_INTERVAL_MS: envInt(2_000, 10),
  /** Heartbeat period (ControlPlane pauses speculation when beats stop advancing). */
  ESTIMATOR_HEARTBEAT_MS: envInt(1_000, 10),
  /**
   * How long an applied outcome id is remembered before the outcome streams' delivery cut
   * (dedupe-horizon.ts): it must cover a scheduler's republish of an outcome it published but
   * did not record (its recovery sweep: RECOVERY_STALE_MS + RECOVERY_SWEEP_MS). Redelivered
   * pending entries are covered whatever the window. At least a minute and two claim cycles.
   */
  ESTIMATOR_DEDUPE_WINDOW_MS: envInt(DEFAULT_DEDUPE_WINDOW_MS, MIN_DEDUPE_WINDOW_MS),
  /** How often acknowledged entries are trimmed from the outcomes stream (0 = never). */
  ESTIMATOR_TRIM_INTERVAL_MS: envInt(10_000, 0),
  /** JSON CalibrationOverrides applied over the documented defaults for every tenant. */
  ESTIMATOR_CALIBRATION: envJson(CalibrationOverridesSchema).optional(),
  /** Automatic global kill: this many distinct classes alarming within the window (0 = off). */
  ESTIMATOR_AUTO_GLOBAL_CLASSES: envInt(3, 0),
  ESTIMATOR_AUTO_GLOBAL_WINDOW_MS: envInt(60_000, 1),
  /** λ ($/s) used for the canary gate when the tenant's config has none. */
  ESTIMATOR_DEFAULT_LAMBDA_USD_PER_SEC: z.coerce.number().nonnegative().default(0.01),
  /** How long the tenant config (λ, calibration overrides) is cached. */
  ESTIMATOR_TENANT_CACHE_MS: envInt(5_000, 0),
  /** On SIGTERM, how long the in-flight batch may take before connections are cut. */
  ESTIMATOR_DRAIN_TIMEOUT_MS: envInt(5_000, 0),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type EstimatorEnv = z.infer<typeof EnvSchema> & { readonly ESTIMATOR_ID: string; readonly telemetry: TelemetryConfig };

/** Parses the environment once; throws ValidationError naming each bad variable. */
export function parseEnv(source: Readonly<Record<string, string | undefined>>): EstimatorEnv {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, 'env'));
  // The dedupe window covers at least two claim cycles (a pending entry claimed, and claimed again).
  const claimCycleMs = parsed.data.ESTIMATOR_CLAIM_IDLE_MS + parsed.data.ESTIMATOR_CLAIM_INTERVAL_MS;
  if (parsed.data.ESTIMATOR_DEDUPE_WINDOW_MS < 2 * claimCycleMs)
    throw new ValidationError([
      {
        path: 'env.ESTIMATOR_DEDUPE_WINDOW_MS',
        message: `must be at least two claim cycles, 2 × (ESTIMATOR_CLAIM_IDLE_MS + ESTIMATOR_CLAIM_INTERVAL_MS) = ${2 * claimCycleMs} ms, got ${parsed.data.ESTIMATOR_DEDUPE_WINDOW_MS}`,
      },
    ]);
  return { ...parsed.data, ESTIMATOR_ID: parsed.data.ESTIMATOR_ID ?? `${hostname()}-${process.pid}`, telemetry: telemetryConfigFromEnv(parsed.data, 'gambit-estimator') };
}

export function loadEnv(): EstimatorEnv {
  return parseEnv(process.env);
}
