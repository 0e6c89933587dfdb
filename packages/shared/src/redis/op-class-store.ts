/**
 * The learned estimates of operation classes in Redis (M4): one hash per (tenant, class),
 * `opClassKeys(ks, tenant, K).dist`, in the form of core/operation-class.ts (per metric
 * `m:n`, `m:sum`, `m:<bin>`), and the tenant's set of classes. Workers record every finished
 * operation (one pipeline of HINCRBYFLOATs, no read); schedulers read a workflow's classes (one
 * read each: they live in different cluster slots) and cache them (OperationEstimateCache).
 */
import { decodeEstimates, type OperationEstimates, type OperationSample, sampleIncrements } from '../core/operation-class.js';
import { opClassKeys, type KeySpace, tenantKeys } from './keys.js';
import type { RedisLike } from './scripts.js';

/**
 * Adds one finished operation to its class's distributions. A pipeline, not a transaction: the
 * class hash and the tenant's set live in different cluster slots. Each increment is atomic and
 * order-free; a reader may see a sample half-applied (n counted before its bin), which shifts a
 * quantile by less than one observation.
 */
export async function recordOperationSample(redis: RedisLike, ks: KeySpace, tenant: string, opClass: string, sample: OperationSample): Promise<void> {
  const key = opClassKeys(ks, tenant, opClass).dist;
  // One pipeline per slot: ioredis refuses a Cluster pipeline whose keys span slots.
  const pipe = redis.pipeline();
  for (const [field, by] of sampleIncrements(sample)) pipe.hincrbyfloat(key, field, by);
  const [res] = await Promise.all([pipe.exec(), redis.sadd(tenantKeys(ks, tenant).opClasses, opClass)]);
  for (const [err] of res ?? []) if (err) throw err;
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
