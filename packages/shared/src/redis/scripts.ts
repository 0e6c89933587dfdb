/**
 * Loads Lua scripts from `redis/lua/*.lua` (one script per file, named `verbNoun-<numKeys>.lua`,
 * each opening with a header listing KEYS, ARGV and return codes, as BullMQ does) and
 * calls them by EVALSHA (EVAL the first time per client). Typed wrappers live next to their owners
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

/**
 * The source of `lua/<file>`; `file` is e.g. `finishAttempt-2.lua`. A line `--#include <name>`
 * is replaced by `lua/lib/<name>.lua` (shared local functions, e.g. the state codec of issue 13
 * item 3), so each script stays one self-contained EVAL body.
 */
export function luaSource(file: string): string {
  let src = cache.get(file);
  if (src === undefined) {
    src = readFileSync(join(LUA_DIR, file), 'utf8').replace(/^--#include ([a-z-]+)$/gm, (_, name: string) => readFileSync(join(LUA_DIR, 'lib', `${name}.lua`), 'utf8'));
    cache.set(file, src);
  }
  return src;
}

/**
 * Command name and key count from a file name `verbNoun-<numKeys>.lua`; `verbNoun-N.lua` takes a
 * number of keys given per call (`numberOfKeys` undefined; callScript passes the keys' count).
 */
const parsedNames = new Map<string, { name: string; numberOfKeys: number | undefined }>();

export function parseScriptName(file: string): { name: string; numberOfKeys: number | undefined } {
  let parsed = parsedNames.get(file);
  if (parsed !== undefined) return parsed;
  const m = /^([A-Za-z]+)-(\d+|N)\.lua$/.exec(file);
  if (m === null) throw new Error(`bad Lua script file name ${file}: expected verbNoun-<numKeys>.lua or verbNoun-N.lua`);
  parsed = { name: m[1] as string, numberOfKeys: m[2] === 'N' ? undefined : Number(m[2]) };
  parsedNames.set(file, parsed);
  return parsed;
}

/** Every script file of `lua/`. */
function allScriptFiles(): string[] {
  return readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
}

let checked = false;

/**
 * Checks the script files (their names and sources are read once per process). Kept as the
 * scripts' owners' entry point; since issue 13 item 1 it registers nothing on the client.
 *
 * Scripts used to be registered with ioredis `defineCommand`. Every pipeline ioredis opens (one per
 * tick per auto-pipelined connection, the scheduler's, and each MULTI) copies every defined
 * command of its client onto itself, two properties per script: with 44 scripts that copy was
 * about a tenth of the scheduler's CPU (bench/runtime `--profile`, docs/runtime.md "Measured").
 * `callScript` now sends EVALSHA / EVAL itself, so a client has no defined commands to copy, and
 * no script can be missing from a pipeline because it was defined while the pipeline was open.
 */
export function defineScripts(_redis: RedisLike, files: readonly string[]): void {
  if (!checked) {
    for (const file of allScriptFiles()) {
      parseScriptName(file);
      luaSource(file);
    }
    checked = true;
  }
  for (const file of files) {
    parseScriptName(file);
    luaSource(file);
  }
}

/**
 * Per client, the scripts it has sent whole (EVAL) and Redis accepted: the server holds them in
 * its script cache, so the client sends their SHA-1 (EVALSHA) from then on. A NOSCRIPT reply (a
 * Redis restarted or flushed, another Cluster node, a script evicted) sends the source again.
 */
const loaded = new WeakMap<object, Set<string>>();

/**
 * Calls the script `lua/<file>`: EVALSHA once this client has sent the script, EVAL (its source)
 * before that and after a NOSCRIPT reply. A Cluster client routes (and auto-pipelines) EVALSHA and
 * EVAL by their first key.
 */
export async function callScript<T = unknown>(redis: RedisLike, file: string, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<T> {
  const { numberOfKeys } = parseScriptName(file);
  if (numberOfKeys !== undefined && numberOfKeys !== keys.length) throw new Error(`Lua script ${file} takes ${numberOfKeys} keys, called with ${keys.length}`);
  let set = loaded.get(redis);
  if (set === undefined) {
    set = new Set();
    loaded.set(redis, set);
  }
  if (set.has(file)) {
    try {
      return (await redis.evalsha(scriptSha(file), keys.length, ...keys, ...args)) as T;
    } catch (err) {
      if (!String(err).includes('NOSCRIPT')) throw err;
      set.delete(file);
    }
  }
  const reply = (await redis.eval(luaSource(file), keys.length, ...keys, ...args)) as T;
  set.add(file);
  return reply;
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
