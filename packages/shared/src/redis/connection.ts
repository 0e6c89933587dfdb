/**
 * Issue 10 item 10: the one builder of the Redis connection options every service uses, for a
 * single server and for each node of a Cluster (`new Cluster(nodes, { redisOptions })`). It adds
 * the ACL user, its password and the TLS files named by the environment. A file that is missing or
 * unreadable, or a client certificate without its key, is a start-up error naming the variable:
 * never a silent connection without TLS.
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';

/** The environment variables the builder reads (RedisAuthEnvShape in schemas/env.ts). */
export interface RedisAuthEnv {
  readonly REDIS_USERNAME?: string | undefined;
  readonly REDIS_PASSWORD?: string | undefined;
  readonly REDIS_TLS_CA_FILE?: string | undefined;
  readonly REDIS_TLS_CERT_FILE?: string | undefined;
  readonly REDIS_TLS_KEY_FILE?: string | undefined;
}

/** A Redis connection setting that cannot be used; `variable` names the environment variable. */
export class RedisConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'RedisConfigError';
  }
}

function readPem(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new RedisConfigError(variable, `cannot read ${path} (${code})`);
  }
}

/**
 * `base` (the caller's retry/queue settings) plus the credentials and TLS options of `env`, for
 * `new Redis(url, opts)` and for `new Cluster(nodes, { redisOptions: opts })` alike. ioredis lets
 * a user or password written in the URL take precedence over these options.
 */
export function redisConnectionOptions(env: RedisAuthEnv, base: RedisOptions = {}): RedisOptions {
  const opts: RedisOptions = { ...base };
  if (env.REDIS_USERNAME !== undefined) opts.username = env.REDIS_USERNAME;
  if (env.REDIS_PASSWORD !== undefined) opts.password = env.REDIS_PASSWORD;
  const hasCert = env.REDIS_TLS_CERT_FILE !== undefined;
  const hasKey = env.REDIS_TLS_KEY_FILE !== undefined;
  if (hasCert !== hasKey)
    throw new RedisConfigError(hasCert ? 'REDIS_TLS_KEY_FILE' : 'REDIS_TLS_CERT_FILE', 'a client certificate needs both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE');
  if (env.REDIS_TLS_CA_FILE !== undefined || hasCert) {
    const tls: NonNullable<RedisOptions['tls']> = {};
    if (env.REDIS_TLS_CA_FILE !== undefined) tls.ca = readPem('REDIS_TLS_CA_FILE', env.REDIS_TLS_CA_FILE);
    if (env.REDIS_TLS_CERT_FILE !== undefined && env.REDIS_TLS_KEY_FILE !== undefined) {
      tls.cert = readPem('REDIS_TLS_CERT_FILE', env.REDIS_TLS_CERT_FILE);
      tls.key = readPem('REDIS_TLS_KEY_FILE', env.REDIS_TLS_KEY_FILE);
    }
    opts.tls = tls;
  }
  return opts;
}
