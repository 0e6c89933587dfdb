/**
 * Retention of ended runs (issue 10 items 5 and 9, issue 13 item 3): how long a tenant's ended run
 * records are kept, whether they keep outputs, and how many are kept at most.
 *
 * - Time: an ended run's keys get a TTL when it ends (expireRun), and its compact record takes the
 *   same TTL when the run is folded (compactRun). The TTL is the tenant's own `retentionSec`
 *   (tenant configuration) capped by its `maxRetentionSec` limit (operator; RUN_RETENTION_SEC by
 *   default; 0 = kept for ever).
 * - Count: each folded run enters the tenant's `ended` index (by end time); beyond the tenant's
 *   `maxRunsKept` limit the oldest ended records are deleted (run hash, record, index entries).
 * - A run's budget settlement markers (`settled:R`, settleBudget-2.lua) are deleted when its
 *   record leaves the index (expired or over the cap; indexEndedRun-3.lua): they live as long
 *   as the record, so they grow with the runs retained, not with every run ever ended.
 *   The index lives in the tenant's slot and the records in their runs' slots, so this is not one
 *   atomic step: records are deleted first and index entries after, so a crash in between leaves
 *   index entries that the next trim deletes again (a no-op on keys already gone).
 */
import { indexEndedRun, type KeySpace, type RedisLike, runKeys, tenantKeys } from '@gambit/shared/redis';
import { HttpError } from './http/errors.js';
import type { LimitStore, Limits } from './limits.js';
import type { TenantStore } from './tenants.js';

/**
 * At most this many expired runs leave the `ended` index per fold (with their settlement
 * markers): in steady state about one per fold; a backlog (retention just shortened) drains over
 * the next folds instead of in one long script.
 */
const FORGET_PER_FOLD = 500;

export interface RetentionRules {
  /** TTL of an ended run's keys, ms; undefined = kept until the runs-kept cap drops them. */
  readonly ttlMs: number | undefined;
  readonly keepOutputs: boolean;
  readonly maxRunsKept: number;
}

/** The part of the policy the engine and the run service use (narrow, STYLE.md 8). */
export interface RetentionSource {
  rules(tenant: string, nowMs: number): Promise<RetentionRules>;
  /** After a run was folded: index it as ended and drop the tenant's oldest records beyond its cap. */
  folded(tenant: string, runId: string, endedAtMs: number, nowMs: number): Promise<number>;
}

/** The effective retention in seconds (0 = for ever): the tenant's choice, at most the cap. */
export function effectiveRetentionSec(tenantSec: number | undefined, capSec: number): number {
  if (tenantSec === undefined) return capSec;
  return capSec === 0 ? tenantSec : Math.min(tenantSec, capSec);
}

/** A tenant's `retentionSec` must not exceed its `maxRetentionSec` limit (422 naming the cap). */
export function checkRetention(retentionSec: number, limits: Limits): void {
  if (limits.maxRetentionSec !== 0 && retentionSec > limits.maxRetentionSec)
    throw new HttpError(422, 'CAP_EXCEEDED', `retentionSec: ${retentionSec} exceeds the tenant's cap maxRetentionSec = ${limits.maxRetentionSec}`, 'retentionSec');
}

export class RetentionPolicy implements RetentionSource {
  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly tenants: TenantStore,
    private readonly limits: LimitStore,
  ) {}

  async rules(tenant: string, nowMs: number): Promise<RetentionRules> {
    const [cfg, limits] = await Promise.all([this.tenants.get(tenant, nowMs), this.limits.get(tenant, nowMs)]);
    const sec = effectiveRetentionSec(cfg.retentionSec, limits.maxRetentionSec);
    return { ttlMs: sec === 0 ? undefined : sec * 1000, keepOutputs: cfg.keepOutputs, maxRunsKept: limits.maxRunsKept };
  }

  async folded(tenant: string, runId: string, endedAtMs: number, nowMs: number): Promise<number> {
    const t = tenantKeys(this.ks, tenant);
    const rules = await this.rules(tenant, nowMs);
    // One step for the indexes: the run is ended (admission's in-flight set loses it now, not
    // lazily), runs whose records expired leave the index with their settlement markers.
    const { ended: count } = await indexEndedRun(this.redis, this.ks, {
      tenant,
      runId,
      endedAtMs,
      cutoffMs: rules.ttlMs === undefined ? undefined : nowMs - rules.ttlMs,
      maxForgotten: FORGET_PER_FOLD,
    });
    if (count <= rules.maxRunsKept) return 0;
    const drop = await this.redis.zrange(t.ended, 0, String(count - rules.maxRunsKept - 1));
    for (const id of drop) {
      const k = runKeys(this.ks, tenant, id);
      await this.redis.del(k.run, k.rec);
    }
    if (drop.length > 0) {
      await this.redis.del(...drop.map((id) => t.settled(id)));
      await this.redis.zrem(t.ended, ...drop);
      await this.redis.zrem(t.runs, ...drop);
    }
    return drop.length;
  }
}
