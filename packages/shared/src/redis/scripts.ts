/**
 * Loads Lua scripts from `redis/lua/*.lua` (one script per file, named `verbNoun-<numKeys>.lua`,
 * each opening with a header listing KEYS, ARGV and return codes, as BullMQ does) and registers
 * them once on an ioredis client with `defineCommand`. Typed wrappers live next to their owners
 * (`attempt-scripts.ts`, `run-scripts.ts`, `estimator-scripts.ts`).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster, Redis } from 'ioredis';

export type RedisLike = Redis | Cluster;

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');
const cache = new Map<string, string>();

/** The source of `lua/<file>`; `file` is e.g. `finishAttempt-2.lua`. */
export function luaSource(file: string): string {
  let src = cache.get(file);
  if (src === undefined) {
    src = readFileSync(join(LUA_DIR, file), 'utf8');
    cache.set(file, src);
  }
  return src;
}

/**
 * Command name and key count from a file name `verbNoun-<numKeys>.lua`; `verbNoun-N.lua` takes a
 * number of keys given per call (`numberOfKeys` undefined; callScript passes the keys' count).
 */
export function parseScriptName(file: string): { name: string; numberOfKeys: number | undefined } {
  const m = /^([A-Za-z]+)-(\d+|N)\.lua$/.exec(file);
  if (m === null) throw new Error(`bad Lua script file name ${file}: expected verbNoun-<numKeys>.lua or verbNoun-N.lua`);
  return { name: m[1] as string, numberOfKeys: m[2] === 'N' ? undefined : Number(m[2]) };
}

const defined = new WeakMap<object, Set<string>>();

/** Every script file of `lua/`. */
function allScriptFiles(): string[] {
  return readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
}

/**
 * Registers the scripts once per client (idempotent). Call the command as `redis[name](...)`.
 * The first call on a client registers every script of `lua/`, not only `files`: a client with
 * auto-pipelining (the scheduler's, main.ts) copies its commands into each pipeline it opens, so
 * a script first registered while a pipeline of the same tick is open is missing from that
 * pipeline (ioredis: `pipeline[functionName] is not a function`, then the process dies on the
 * pipeline's replies). Registered before the client's first command, every script is in every
 * pipeline.
 */
export function defineScripts(redis: RedisLike, files: readonly string[]): void {
  let set = defined.get(redis);
  if (set === undefined) {
    set = new Set();
    defined.set(redis, set);
    files = [...new Set([...allScriptFiles(), ...files])];
  }
  for (const file of files) {
    if (set.has(file)) continue;
    const { name, numberOfKeys } = parseScriptName(file);
    redis.defineCommand(`gambit_${name}`, numberOfKeys === undefined ? { lua: luaSource(file) } : { numberOfKeys, lua: luaSource(file) });
    set.add(file);
  }
}

/** Calls a script registered by `defineScripts`. */
export async function callScript<T = unknown>(redis: RedisLike, file: string, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<T> {
  const { name, numberOfKeys } = parseScriptName(file);
  const commands = redis as unknown as Record<string, (...a: Array<string | number>) => Promise<T>>;
  const fn = commands[`gambit_${name}`];
  if (fn === undefined) throw new Error(`Lua script ${file} is not defined on this client: call defineScripts first`);
  if (numberOfKeys !== undefined) return fn.call(redis, ...keys, ...args);
  if (!(redis as { isCluster?: boolean }).isCluster) return fn.call(redis, keys.length, ...keys, ...args);
  // A Cluster client routes (and auto-pipelines) a defined command by its first argument, which
  // for a variadic one is the key count: there, EVALSHA itself (routed by its first key), and
  // EVAL on a node that does not have the script yet. (Not a command defined on first use: a
  // command defined while an auto-pipeline of the same tick is open is missing from it.)
  const sha = scriptSha(file);
  try {
    return (await redis.evalsha(sha, keys.length, ...keys, ...args)) as T;
  } catch (err) {
    if (!String(err).includes('NOSCRIPT')) throw err;
    return (await redis.eval(luaSource(file), keys.length, ...keys, ...args)) as T;
  }
}

const shas = new Map<string, string>();
/** SHA1 of a script's source (its EVALSHA name). */
function scriptSha(file: string): string {
  let sha = shas.get(file);
  if (sha === undefined) {
    sha = createHash('sha1').update(luaSource(file)).digest('hex');
    shas.set(file, sha);
  }
  return sha;
}
