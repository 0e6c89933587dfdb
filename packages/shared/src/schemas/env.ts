/**
 * zod building blocks for the services' `env.ts` modules (each service still reads
 * `process.env` in exactly one place): integers with defaults, JSON-valued variables, Redis
 * Cluster seed lists, the key prefix, and the price configuration (M2) that scheduler and worker
 * must read identically.
 */
import { z } from 'zod';

/** An integer variable with a default and a minimum. */
export const envInt = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

/**
 * GAMBIT_OUTCOME_SHARDS (issue 13 item 4): how many streams the outcomes are split over (keys.ts
 * outcomeStreams); every scheduler and estimator of a deployment sets the same value.
 */
export const OutcomeShardsSchema = z.coerce.number().int().min(1).max(64).default(1);

/**
 * QUEUE_SHARDS (issue 13 item 4): how many hash tags the queues are sharded over (keys.ts
 * queueShardPrefixes); every scheduler and worker of a deployment sets the same value (checked at
 * start: fair.ts checkQueueShards). 1, the default, is the one `{P:q}` tag of before.
 */
export const QueueShardsSchema = z.coerce.number().int().min(1).max(64).default(1);

/** A variable holding JSON, validated by `schema` (a bad value names the variable and says why). */
export const envJson = <T extends z.ZodType>(schema: T) =>
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

/** `host:port,host:port` seeds of a Redis Cluster. */
export const ClusterNodesSchema = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== ''),
  )
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

/** GAMBIT_PREFIX: the key prefix every process of one deployment shares. */
export const KeyPrefixSchema = z
  .string()
  .regex(/^[^{}\s]+$/, 'no braces or whitespace')
  .default('gambit');

/** GAMBIT_PRICES: configured rates for self-hosted models and per-call tool prices (M2). */
export const PriceConfigSchema = z.object({
  models: z
    .record(
      z.string(),
      z.object({
        inputPerMTokUsd: z.number().nonnegative(),
        cachedInputPerMTokUsd: z.number().nonnegative().optional(),
        outputPerMTokUsd: z.number().nonnegative(),
      }),
    )
    .optional(),
  toolPrices: z.record(z.string(), z.number().nonnegative()).optional(),
});
export type PriceConfig = z.infer<typeof PriceConfigSchema>;

/**
 * Issue 10 item 10: Redis credentials and TLS files, read by every service and applied to a
 * single server and to every node of a Cluster alike (`redisConnectionOptions` in
 * `@gambit/shared/redis`, the one options builder).
 */
export const RedisAuthEnvShape = {
  /** ACL user name (default user when unset). */
  REDIS_USERNAME: z.string().min(1).optional(),
  /** Password of REDIS_USERNAME (or of the default user). */
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** PEM file of the CA that signed the server's certificate; setting it turns TLS on. */
  REDIS_TLS_CA_FILE: z.string().min(1).optional(),
  /** PEM client certificate (mutual TLS); needs REDIS_TLS_KEY_FILE. */
  REDIS_TLS_CERT_FILE: z.string().min(1).optional(),
  /** PEM private key of REDIS_TLS_CERT_FILE. */
  REDIS_TLS_KEY_FILE: z.string().min(1).optional(),
};
