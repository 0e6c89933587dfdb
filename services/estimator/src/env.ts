/**
 * The estimator's configuration: the only module that reads `process.env` (STYLE.md 1), parsed
 * once with zod into a complete, validated object. An invalid variable stops the process at
 * start with the variable named.
 */
import { hostname } from 'node:os';
import { CalibrationOverridesSchema, ValidationError, zodIssues } from '@gambit/shared';
import { z } from 'zod';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const jsonOf = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

const ClusterNodes = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p !== ''))
  .pipe(
    z
      .array(
        z
          .string()
          .regex(/^[^:\s]+:\d+$/, 'each node must be host:port')
          .transform((p) => {
            const i = p.lastIndexOf(':');
            return { host: p.slice(0, i), port: Number(p.slice(i + 1)) };
          }),
      )
      .min(1),
  );

const EnvSchema = z.object({
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  /** Comma-separated host:port seeds; when set, the estimator talks to a Redis Cluster. */
  REDIS_CLUSTER_NODES: ClusterNodes.optional(),
  GAMBIT_PREFIX: z
    .string()
    .regex(/^[^{}\s]+$/, 'no braces or whitespace')
    .default('gambit'),
  ESTIMATOR_ID: z.string().min(1).optional(),
  /** Entries read per XREADGROUP / XAUTOCLAIM call. */
  ESTIMATOR_BATCH: int(100, 1),
  /** XREADGROUP BLOCK: how long one read waits for new entries. */
  ESTIMATOR_BLOCK_MS: int(500, 1),
  /** An entry pending this long (its estimator died or hangs) is taken over with XAUTOCLAIM. */
  ESTIMATOR_CLAIM_IDLE_MS: int(10_000, 1),
  ESTIMATOR_CLAIM_INTERVAL_MS: int(2_000, 10),
  /** Heartbeat period (ControlPlane pauses speculation when beats stop advancing). */
  ESTIMATOR_HEARTBEAT_MS: int(1_000, 10),
  /** How often acknowledged entries are trimmed from the outcomes stream (0 = never). */
  ESTIMATOR_TRIM_INTERVAL_MS: int(10_000, 0),
  /** JSON CalibrationOverrides applied over the documented defaults for every tenant. */
  ESTIMATOR_CALIBRATION: jsonOf(CalibrationOverridesSchema).optional(),
  /** Automatic global kill: this many distinct classes alarming within the window (0 = off). */
  ESTIMATOR_AUTO_GLOBAL_CLASSES: int(3, 0),
  ESTIMATOR_AUTO_GLOBAL_WINDOW_MS: int(60_000, 1),
  /** λ ($/s) used for the canary gate when the tenant's config has none. */
  ESTIMATOR_DEFAULT_LAMBDA_USD_PER_SEC: z.coerce.number().nonnegative().default(0.01),
  /** How long the tenant config (λ, calibration overrides) is cached. */
  ESTIMATOR_TENANT_CACHE_MS: int(5_000, 0),
  /** On SIGTERM, how long the in-flight batch may take before connections are cut. */
  ESTIMATOR_DRAIN_TIMEOUT_MS: int(5_000, 0),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type EstimatorEnv = z.infer<typeof EnvSchema> & { readonly ESTIMATOR_ID: string };

/** Parses the environment once; throws ValidationError naming each bad variable. */
export function parseEnv(source: Readonly<Record<string, string | undefined>>): EstimatorEnv {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, 'env'));
  return { ...parsed.data, ESTIMATOR_ID: parsed.data.ESTIMATOR_ID ?? `${hostname()}-${process.pid}` };
}

export function loadEnv(): EstimatorEnv {
  return parseEnv(process.env);
}
