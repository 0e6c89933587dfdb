/**
 * The scheduler's configuration: the only place that reads `process.env`, parsed once with zod
 * into a complete, validated object (STYLE.md 1).
 */
import { OpsEnvShape, type TelemetryConfig, TelemetryEnvShape, telemetryConfigFromEnv } from '@gambit/shared/telemetry';
import { QUEUE_EVENTS_MAX_LEN_DEFAULT } from '@gambit/shared/redis';
import { TrustedOriginsEnvSchema } from '@gambit/shared/outbound';
import { OutcomeShardsSchema, QueueShardsSchema, RedisAuthEnvShape } from '@gambit/shared';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

/** Every variable the scheduler reads (docs/configuration.md is checked against this). */
export const EnvSchema = z
  .object({
    ...OpsEnvShape,
    ...TelemetryEnvShape,
    /** A single Redis server. */
    REDIS_URL: z.string().url().optional(),
    ...RedisAuthEnvShape,
    /** A Redis Cluster: comma-separated host:port seed nodes (takes precedence over REDIS_URL). */
    REDIS_CLUSTER_NODES: z.string().optional(),
    GAMBIT_PREFIX: z.string().regex(/^[A-Za-z0-9_:.-]+$/).default('gambit'),
    /** Issue 13 item 4: outcome stream shards; the same value on every scheduler and estimator. */
    GAMBIT_OUTCOME_SHARDS: OutcomeShardsSchema,
    /** Issue 13 item 4: queue shards (hash tags); the same value on every scheduler and worker. */
    QUEUE_SHARDS: QueueShardsSchema,
    /** 0 = a free port; the bound one is logged as {"msg":"scheduler listening","port":N}. */
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().default('127.0.0.1'),
    /** The operator's API key (issue 10 item 1): kill, revive, class internals, key management. */
    GAMBIT_ADMIN_KEY: z.string().min(32, 'must be at least 32 characters').max(512),
    /** Secret of the HMAC-SHA-256 under which tenant API keys are stored (never the keys themselves). */
    GAMBIT_KEY_HMAC_SECRET: z.string().min(32, 'must be at least 32 characters').max(512),
    /** Issue 10 items 4-5: per-tenant defaults of caps and admission (the operator overrides them per tenant). */
    TENANT_MAX_PROMPT_BYTES: z.coerce.number().int().positive().default(262_144),
    TENANT_MAX_TOKENS: z.coerce.number().int().positive().default(32_768),
    TENANT_MAX_NODES: z.coerce.number().int().positive().max(500).default(100),
    TENANT_MAX_EDGES: z.coerce.number().int().nonnegative().max(5_000).default(500),
    TENANT_MAX_FAN_OUT: z.coerce.number().int().positive().default(50),
    TENANT_RATE_PER_SEC: z.coerce.number().positive().default(100),
    TENANT_BURST: z.coerce.number().int().positive().default(2_000),
    TENANT_MAX_IN_FLIGHT_RUNS: z.coerce.number().int().positive().default(2_000),
    /** Issue 10 item 4: a tenant's default operation deadline (ms of one try) for nodes that set no `timeoutMs`. */
    TENANT_OP_TIMEOUT_MS: z.coerce.number().int().positive().max(86_400_000).default(300_000),
    /** Issue 11 D3: the API's Redis commands fail (503) after this long instead of waiting for Redis. */
    API_REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().positive().default(2_000),
    /** Issue 11 D3: a submit not written within this long is abandoned (503, nothing stored). */
    API_DEADLINE_MS: z.coerce.number().int().positive().default(10_000),
    /** Largest accepted HTTP body, bytes (413 above). */
    BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(1_048_576),
    /** M3 defaults for tenants without a configured dial. */
    DEFAULT_ALPHA: z.coerce.number().min(0).max(1).default(0.5),
    DEFAULT_LAMBDA_USD_PER_SEC: z.coerce.number().nonnegative().default(0.01),
    /** M9 stage of new edge classes of tenants that configured none. */
    DEFAULT_INITIAL_STAGE: z.enum(['shadow', 'canary', 'online']).default('shadow'),
    /** Recovery sweep period and the age after which a run counts as stalled. */
    RECOVERY_SWEEP_MS: z.coerce.number().int().positive().default(2_000),
    RECOVERY_STALE_MS: z.coerce.number().int().positive().default(5_000),
    /** M9.5: no fresh estimator heartbeat stops speculation. `false` only for set-ups without an estimator. */
    REQUIRE_ESTIMATOR_HEARTBEAT: bool.default(true),
    ADVANCE_CONCURRENCY: z.coerce.number().int().positive().max(256).default(8),
    /**
     * Issue 10 item 4, fair dispatch: jobs allowed in a BullMQ queue beyond the workers' registered
     * slots (0: a job is handed to BullMQ only for a free slot, so another tenant's job waits
     * behind no flood). More hides the hand-over latency at the cost of fairness.
     */
    FAIR_QUEUE_HEADROOM: z.coerce.number().int().nonnegative().max(1_000_000_000).default(0),
    /**
     * Issue 10 item 4, fair dispatch: the last this many free slots of each lane (over all
     * workers) are never filled by a tenant at or above its share (fairClaim-9.lua), so a tenant
     * arriving during another's flood, or running its second job meanwhile, starts at once (the
     * reserve stays idle while a single tenant has work). Workers use the same value (they pump
     * too): set it on both.
     */
    FAIR_RESERVED_SLOTS: z.coerce.number().int().nonnegative().max(1_000).default(2),
    /**
     * Issue 10 item 4: at most this many of one tenant's submits in progress at once in this
     * scheduler process (the rest wait their turn in order), so one tenant's burst does not slow
     * every other tenant's submit by all of its steps.
     */
    SUBMIT_CONCURRENCY_PER_TENANT: z.coerce.number().int().positive().max(10_000).default(2),
    /** Issue 10 item 4: the backstop pump of the fair dispatcher (workers pump when they free a slot). */
    FAIR_PUMP_MS: z.coerce.number().int().positive().default(200),
    /** BullMQ tries of an authoritative job (a worker killed mid-job is retried). */
    OPS_JOB_ATTEMPTS: z.coerce.number().int().positive().max(20).default(3),
    LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    SCHEDULER_ID: z.string().min(1).max(64).optional(),
    /** JSON PriceTableConfig (configured model rates, tool prices), as the worker reads it (M2). */
    GAMBIT_PRICES: z
      .string()
      .transform((s, ctx) => {
        try {
          return JSON.parse(s) as { models?: Record<string, { inputPerMTokUsd: number; cachedInputPerMTokUsd?: number; outputPerMTokUsd: number }>; toolPrices?: Record<string, number> };
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON' });
          return z.NEVER;
        }
      })
      .optional(),
    /** Comma-separated tool names the workers serve; when set, workflows naming others are rejected (4xx). */
    KNOWN_TOOLS: z.string().optional(),
    /**
     * Retention: an ended run's record expires this many seconds after the run ended (0 = kept for
     * ever): the default of every tenant's `maxRetentionSec` limit (issue 10 items 5 and 9).
     */
    RUN_RETENTION_SEC: z.coerce.number().int().nonnegative().max(10 * 365 * 24 * 3600).default(7 * 24 * 3600),
    /** Ended runs kept per tenant at most (the default of its `maxRunsKept` limit); the oldest beyond it are dropped. */
    TENANT_MAX_RUNS_KEPT: z.coerce.number().int().positive().max(100_000_000).default(100_000),
    /** BullMQ event stream length of the ops and spec queues (approximate; no Gambit component reads it). */
    QUEUE_EVENTS_MAX_LEN: z.coerce.number().int().nonnegative().default(QUEUE_EVENTS_MAX_LEN_DEFAULT),
    /** Run-end webhook (docs/api.md, Webhooks): tries per delivery, first retry delay (doubling), POST timeout, deliveries at once. */
    WEBHOOK_ATTEMPTS: z.coerce.number().int().positive().max(30).default(8),
    WEBHOOK_BACKOFF_MS: z.coerce.number().int().positive().default(1_000),
    WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
    WEBHOOK_CONCURRENCY: z.coerce.number().int().positive().max(64).default(4),
    /** Issue 10 item 6: origins the operator trusts; webhook deliveries to them skip the outbound guard's address check. */
    OUTBOUND_TRUSTED_ORIGINS: TrustedOriginsEnvSchema.optional(),
    /** Issue 10 item 6: bytes of a webhook receiver's answer read at most. */
    OUTBOUND_MAX_BODY_BYTES: z.coerce.number().int().positive().default(65_536),
    /** Graceful shutdown deadline. */
    SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
  })
  .refine((e) => e.REDIS_URL !== undefined || e.REDIS_CLUSTER_NODES !== undefined, {
    message: 'set REDIS_URL or REDIS_CLUSTER_NODES',
    path: ['REDIS_URL'],
  });

/** Traces and metrics: the OTEL_* variables (shared/telemetry/config.ts). */
export type SchedulerEnv = z.infer<typeof EnvSchema> & { readonly telemetry: TelemetryConfig };

export function loadEnv(source: NodeJS.ProcessEnv = process.env): SchedulerEnv {
  // Empty strings mean "unset" (a common shell idiom), not an invalid value.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const r = EnvSchema.safeParse(cleaned);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new Error(`invalid scheduler environment: ${lines.join('; ')}`);
  }
  return { ...r.data, telemetry: telemetryConfigFromEnv(r.data, 'gambit-scheduler') };
}

/** Seed nodes of REDIS_CLUSTER_NODES. */
export function clusterNodes(env: SchedulerEnv): Array<{ host: string; port: number }> | undefined {
  if (env.REDIS_CLUSTER_NODES === undefined || env.REDIS_CLUSTER_NODES.trim() === '') return undefined;
  return env.REDIS_CLUSTER_NODES.split(',').map((s) => {
    const [host, port] = s.trim().split(':');
    return { host: host ?? '127.0.0.1', port: Number(port) };
  });
}

/** KNOWN_TOOLS as a set, or undefined when not configured (no check). */
export function knownTools(env: SchedulerEnv): ReadonlySet<string> | undefined {
  if (env.KNOWN_TOOLS === undefined) return undefined;
  return new Set(
    env.KNOWN_TOOLS.split(',')
      .map((t) => t.trim())
      .filter((t) => t !== ''),
  );
}
