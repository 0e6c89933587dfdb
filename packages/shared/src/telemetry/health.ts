/**
 * Liveness and readiness (issue 11 item 4): `/healthz` says the process is alive (it answers at
 * all); `/readyz` runs the service's checks (Redis reachable, its Lua scripts loaded on every
 * master, its consumers running) each under a deadline, so the answer comes within one second
 * whatever state Redis is in: an ioredis client queues commands while disconnected and would
 * otherwise make the probe hang.
 */
import { createHash } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { type RedisLike, luaSource } from '../redis/scripts.js';

export interface ReadinessCheck {
  readonly name: string;
  /** Resolves when ready; throws (or rejects) with the reason when not. */
  check(): Promise<void> | void;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, { readonly ok: boolean; readonly error?: string }>;
}

/** Per-check deadline: the whole probe answers well inside the 1 s a probe may take. */
export const READINESS_CHECK_TIMEOUT_MS = 700;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(t));
}

export class Readiness {
  constructor(
    private readonly checks: readonly ReadinessCheck[],
    private readonly timeoutMs = READINESS_CHECK_TIMEOUT_MS,
  ) {}

  async evaluate(): Promise<ReadinessReport> {
    const results = await Promise.all(
      this.checks.map(async (c) => {
        try {
          await withTimeout(Promise.resolve().then(() => c.check()), this.timeoutMs, c.name);
          return [c.name, { ok: true }] as const;
        } catch (err) {
          return [c.name, { ok: false, error: err instanceof Error ? err.message : String(err) }] as const;
        }
      }),
    );
    return { ready: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
  }
}

/** Redis reachable: the client is connected (not reconnecting) and answers PING. */
export function redisCheck(name: string, client: RedisLike): ReadinessCheck {
  return {
    name,
    async check() {
      if (client.status !== 'ready') throw new Error(`redis connection is ${client.status}`);
      await client.ping();
    },
  };
}

const shaOf = (src: string) => createHash('sha1').update(src).digest('hex');

async function ensureScripts(node: Redis, files: readonly string[]): Promise<void> {
  const shas = files.map((f) => shaOf(luaSource(f)));
  const exists = (await node.script('EXISTS', ...shas)) as number[];
  await Promise.all(files.map((f, i) => (exists[i] === 1 ? undefined : node.script('LOAD', luaSource(f)))));
}

/**
 * The service's Lua scripts are in the script cache of every master (loaded again after a Redis
 * restart emptied it, so the first command after a restart does not pay the EVAL fallback).
 */
export function scriptsCheck(client: RedisLike, files: readonly string[]): ReadinessCheck {
  return {
    name: 'scripts',
    async check() {
      if (client.status !== 'ready') throw new Error(`redis connection is ${client.status}`);
      const nodes = client instanceof Cluster ? client.nodes('master') : [client as Redis];
      if (nodes.length === 0) throw new Error('no Redis master known');
      await Promise.all(nodes.map((n) => ensureScripts(n, files)));
    },
  };
}

/** A consumer (a BullMQ worker, a stream reader) is running. */
export function runningCheck(name: string, running: () => boolean): ReadinessCheck {
  return {
    name,
    check() {
      if (!running()) throw new Error(`${name} is not running`);
    },
  };
}
