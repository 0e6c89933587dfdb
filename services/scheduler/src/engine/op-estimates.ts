/**
 * Learned estimates of operation classes for the live scheduler (M4): the duration and output
 * tokens each class of work (core/operation-class.ts) has shown across the tenant's runs, as
 * workers record them (redis/op-class-store.ts). Read in one pipeline per (tenant, set of classes)
 * and cached for `ttlMs`: estimates move slowly, and a decision must not pay a round trip for
 * them. A class with fewer than `minSamples` observations has no learned estimate yet; callers
 * then use the node's static estimate (its model's latency profile or its declared duration).
 */
import {
  type Clock,
  type DurationDistribution,
  Distribution,
  histogramDuration,
  type LogHistogram,
  type OperationEstimates,
  operationClassOf,
  type WorkflowNode,
} from '@gambit/shared';
import { type KeySpace, type RedisLike, readOperationEstimates } from '@gambit/shared/redis';

export interface OperationEstimateCacheOptions {
  /** How long a read is reused (ms). */
  readonly ttlMs?: number;
  /** Observations a class needs before its learned estimate replaces the static one. */
  readonly minSamples?: number;
}

export class OperationEstimateCache {
  private readonly entries = new Map<string, { atMs: number; value: OperationEstimates }>();
  private readonly durations = new WeakMap<LogHistogram, DurationDistribution>();
  private readonly ttlMs: number;
  readonly minSamples: number;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    opts: OperationEstimateCacheOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 2000;
    this.minSamples = opts.minSamples ?? 5;
  }

  /** The estimates of every node's class (keyed by node id), fresh within ttlMs. */
  async forNodes(tenant: string, nodes: readonly WorkflowNode[]): Promise<Map<string, OperationEstimates>> {
    const now = this.clock.nowMs();
    const classOf = new Map(nodes.map((n) => [n.id, operationClassOf(n)]));
    const stale = [...new Set(classOf.values())].filter((c) => {
      const e = this.entries.get(`${tenant}|${c}`);
      return e === undefined || now - e.atMs > this.ttlMs;
    });
    if (stale.length > 0) {
      const read = await readOperationEstimates(this.redis, this.ks, tenant, stale);
      for (const [c, v] of read) this.entries.set(`${tenant}|${c}`, { atMs: now, value: v });
    }
    const out = new Map<string, OperationEstimates>();
    for (const [id, c] of classOf) {
      const e = this.entries.get(`${tenant}|${c}`);
      if (e !== undefined) out.set(id, e.value);
    }
    return out;
  }

  /** The learned duration distribution of a class, or undefined below minSamples. */
  learnedDuration(est: OperationEstimates | undefined): DurationDistribution | undefined {
    if (est === undefined || est.durationMs.n < this.minSamples) return undefined;
    // One distribution object per read histogram: the timing analysis keeps its quantile table.
    let d = this.durations.get(est.durationMs);
    if (d === undefined) {
      d = histogramDuration(est.durationMs);
      this.durations.set(est.durationMs, d);
    }
    return d;
  }

  /** The learned mean output tokens of a class, or undefined below minSamples. */
  learnedOutputTokens(est: OperationEstimates | undefined): number | undefined {
    return est !== undefined && est.outputTokens.n >= this.minSamples ? Distribution.mean(est.outputTokens) : undefined;
  }
}
