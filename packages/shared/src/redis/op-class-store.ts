/**
 * The learned estimates of operation classes in Redis (M4): one hash per (tenant, class),
 * `opClassKeys(ks, tenant, K).dist`, in the form of core/operation-class.ts (per metric
 * `m:n`, `m:sum`, `m:<bin>`), and the tenant's set of classes. Workers record every finished
 * operation (one script call, recordOpSample-1.lua); schedulers read a workflow's classes (one
 * read each: they live in different cluster slots) and cache them (OperationEstimateCache).
 */
import { decodeEstimates, type OperationEstimates, type OperationSample, sampleIncrements } from '../core/operation-class.js';
import { opClassKeys, type KeySpace, tenantKeys } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

/** Classes this process has added to their tenant's set, per client (bounded: cleared when full). */
const knownClasses = new WeakMap<object, Set<string>>();
const KNOWN_CLASSES_MAX = 10_000;

/**
 * Adds one finished operation to its class's distributions: one script on the class hash
 * (recordOpSample-1.lua: all of the sample's fields at once, so a reader never sees it
 * half-applied; the hash is its own cluster slot). The class enters the tenant's set (another
 * slot, so its own command) the first time this process records it (the set is only ever added to).
 */
export async function recordOperationSample(redis: RedisLike, ks: KeySpace, tenant: string, opClass: string, sample: OperationSample): Promise<void> {
  const args: Array<string | number> = [];
  for (const [field, by] of sampleIncrements(sample)) args.push(field, by);
  defineScripts(redis, ['recordOpSample-1.lua']);
  const script = callScript<number>(redis, 'recordOpSample-1.lua', [opClassKeys(ks, tenant, opClass).dist], args);
  let known = knownClasses.get(redis);
  if (known === undefined) {
    known = new Set();
    knownClasses.set(redis, known);
  }
  const member = `${ks.prefix}\u0000${tenant}\u0000${opClass}`;
  if (known.has(member)) {
    await script;
    return;
  }
  await Promise.all([script, redis.sadd(tenantKeys(ks, tenant).opClasses, opClass)]);
  if (known.size >= KNOWN_CLASSES_MAX) known.clear();
  known.add(member);
}

/** The stored estimates of each class (EMPTY_ESTIMATES for a class never observed). */
export async function readOperationEstimates(
  redis: RedisLike,
  ks: KeySpace,
  tenant: string,
  classes: readonly string[],
): Promise<Map<string, OperationEstimates>> {
  const out = new Map<string, OperationEstimates>();
  if (classes.length === 0) return out;
  // Each class hash has its own cluster slot, so one read each (ioredis batches them on one
  // connection per node); a pipeline would span slots.
  const hashes = await Promise.all(classes.map((c) => redis.hgetall(opClassKeys(ks, tenant, c).dist)));
  for (const [i, c] of classes.entries()) out.set(c, decodeEstimates((hashes[i] ?? {}) as Record<string, string>));
  return out;
}
