/**
 * The worker's configuration: the only module that reads `process.env` (STYLE.md 1), parsed once
 * with zod into a complete, validated object. An invalid variable stops the process at start
 * with the variable named.
 */
import { hostname } from 'node:os';
import { ClusterNodesSchema, envInt, envJson, KeyPrefixSchema, PriceConfigSchema, QueueShardsSchema, RedisAuthEnvShape, ValidationError, zodIssues } from '@gambit/shared';
import { OpsEnvShape, type TelemetryConfig, TelemetryEnvShape, telemetryConfigFromEnv } from '@gambit/shared/telemetry';
import { QUEUE_EVENTS_MAX_LEN_DEFAULT } from '@gambit/shared/redis';
import { TrustedOriginsEnvSchema } from '@gambit/shared/outbound';
import { z } from 'zod';

const OpenAiCompatible = z.record(
  z.string(),
  z.object({ baseUrl: z.string().url(), apiKey: z.string().optional(), timeoutMs: z.number().int().positive().optional() }),
);

/** Every variable the worker reads (docs/configuration.md is checked against this). */
export const EnvSchema = z.object({
  ...OpsEnvShape,
  ...TelemetryEnvShape,
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  ...RedisAuthEnvShape,
  /** Comma-separated host:port seeds; when set, the worker talks to a Redis Cluster. */
  REDIS_CLUSTER_NODES: ClusterNodesSchema.optional(),
  GAMBIT_PREFIX: KeyPrefixSchema,
  WORKER_ID: z.string().min(1).optional(),
  /** Authoritative slots (queue `ops`). */
  WORKER_CONCURRENCY: envInt(4, 1),
  /** Speculative slots (queue `spec`), separate so speculation never takes an authoritative slot (M10). */
  WORKER_SPEC_CONCURRENCY: envInt(2, 0),
  /** BullMQ lock duration: a job whose worker died is seen as stalled after this long. */
  WORKER_LOCK_DURATION_MS: envInt(30_000, 100),
  /** How often BullMQ looks for stalled jobs. */
  WORKER_STALLED_INTERVAL_MS: envInt(15_000, 100),
  /**
   * Executions (tries) of one attempt before it is failed, whatever ended the earlier ones
   * (stalls, retry-after delays, shutdown hand-backs). BullMQ's own stall limit is set to twice
   * this, only as a backstop, so that an attempt is failed by the worker (recorded, announced)
   * rather than by BullMQ (which never reaches the processor and would leave it `running`).
   */
  WORKER_MAX_TRIES: envInt(10, 1),
  /** On SIGTERM, how long running authoritative jobs may take before they are handed back. */
  WORKER_DRAIN_TIMEOUT_MS: envInt(20_000, 0),
  /** How often a running attempt's status is re-read (pub/sub can drop a cancel). */
  WORKER_STATUS_CHECK_MS: envInt(500, 10),
  /** Partial output (M8): at most one event per this many ms ... */
  WORKER_PARTIAL_MIN_INTERVAL_MS: envInt(100, 0),
  /** ... unless this many stream deltas arrived since the last one. */
  WORKER_PARTIAL_MIN_DELTAS: envInt(16, 1),
  /** Simulated latency of the built-in kv_lookup tool (ms, before the time scale). */
  WORKER_KV_LATENCY_MS: envInt(20, 0),
  /** Multiplies simulated delays (provider and tools): 0.01 runs 100x faster. */
  GAMBIT_SIM_TIME_SCALE: z.coerce.number().nonnegative().default(1),
  /** Share of simulated input tokens reported as cached. */
  GAMBIT_SIM_CACHED_INPUT_SHARE: z.coerce.number().min(0).max(1).default(0),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.string().url().optional(),
  GAMBIT_LOCAL_MODEL_PATH: z.string().min(1).optional(),
  /**
   * Issue 10 item 8: `1`/`true` runs nodes naming `openai`, `anthropic` or `local` on the
   * simulated provider when that provider is not configured (reported as provider `simulated`).
   * Off by default: such a node fails with PROVIDER_NOT_CONFIGURED naming the variable to set.
   */
  GAMBIT_SIMULATED_FALLBACK: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .default(false),
  /** JSON: extra OpenAI-compatible endpoints by provider name, e.g. {"vllm":{"baseUrl":"http://..."}}. */
  GAMBIT_OPENAI_COMPATIBLE: envJson(OpenAiCompatible).optional(),
  /** JSON PriceTableConfig: configured model rates and per-call tool prices (M2). */
  GAMBIT_PRICES: envJson(PriceConfigSchema).optional(),
  /** Path of an ES module exporting `register(registry)` to add user tools. */
  GAMBIT_TOOLS_MODULE: z.string().min(1).optional(),
  /**
   * Issue 10 item 6: origins (`scheme://host:port`, comma-separated) the operator trusts for tool
   * requests: exempt from the address check of the outbound guard (an internal service).
   */
  OUTBOUND_TRUSTED_ORIGINS: TrustedOriginsEnvSchema.optional(),
  /** Issue 10 item 6: bytes of a tool's HTTP response body read at most (the rest is not read). */
  OUTBOUND_MAX_BODY_BYTES: envInt(65_536, 1),
  /** Issue 10 item 6: redirects followed by hand (each hop checked). */
  OUTBOUND_MAX_REDIRECTS: envInt(5, 0),
  /** Issue 10 item 6: connect, headers and body timeout of a tool's HTTP request. */
  OUTBOUND_TIMEOUT_MS: envInt(30_000, 100),
  /** Issue 10 item 4: the longest `sleep` a workflow may ask for; longer ones fail at once. */
  WORKER_MAX_SLEEP_MS: envInt(30_000, 0),
  /** Issue 10 item 4, fair dispatch: free slots never filled by a tenant at or above its share (as on the scheduler: set both alike). */
  FAIR_RESERVED_SLOTS: envInt(2, 0),
  /** Issue 10 item 4: the operator's cap on one operation's deadline (a try), ms; also the deadline of a job that names none. */
  WORKER_MAX_OP_TIMEOUT_MS: envInt(600_000, 1),
  /** Issue 13 item 3: BullMQ's event stream length per queue, as on the scheduler (set both alike). */
  QUEUE_EVENTS_MAX_LEN: envInt(QUEUE_EVENTS_MAX_LEN_DEFAULT, 0),
  /** Issue 13 item 4: queue shards (hash tags), as on the scheduler (the same value: checked at start). */
  QUEUE_SHARDS: QueueShardsSchema,
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type WorkerEnv = z.infer<typeof EnvSchema> & {
  readonly WORKER_ID: string;
  /** Traces and metrics: the OTEL_* variables (shared/telemetry/config.ts). */
  readonly telemetry: TelemetryConfig;
};

/** Parses the environment once; throws ValidationError naming each bad variable. */
export function parseEnv(source: Readonly<Record<string, string | undefined>>): WorkerEnv {
  // Empty strings mean "unset" (a common shell idiom), not an invalid value.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, 'env'));
  const telemetry = telemetryConfigFromEnv(parsed.data, 'gambit-worker');
  return { ...parsed.data, WORKER_ID: parsed.data.WORKER_ID ?? `${hostname()}-${process.pid}`, telemetry };
}

export function loadEnv(): WorkerEnv {
  return parseEnv(process.env);
}
