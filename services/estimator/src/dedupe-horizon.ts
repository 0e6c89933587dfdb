/**
 * How long the estimator remembers an applied outcome id (M5 idempotence; issue 13 item 5: the
 * per-class `seen` set kept 24 h of ids, so it grew with throughput). An outcome id can come
 * back in two ways, and the dedupe covers both:
 *
 * - Redelivery of the same stream entry: an estimator applied a batch and died (or its XACK
 *   failed) before acknowledging it; the entry stays pending and is claimed (XAUTOCLAIM) after
 *   ESTIMATOR_CLAIM_IDLE_MS, or, if every estimator was down, whenever one comes back. An id is
 *   therefore kept while any entry added at or after its application may still be delivered:
 *   ids applied after the streams' delivery cut (trim.ts: the oldest pending entry, or the next
 *   unread one) minus the window are never forgotten, however long an entry stays pending.
 * - A second entry with the same id: a scheduler published the outcome and died (or lost a race)
 *   before recording it on the run, and the run's next pass publishes it again, after the
 *   scheduler's recovery sweep picks the run up (RECOVERY_STALE_MS + RECOVERY_SWEEP_MS, 7 s by
 *   default, with a scheduler alive). The window (ESTIMATOR_DEDUPE_WINDOW_MS, 10 min by
 *   default) must cover that delay; an outcome republished later than that (every scheduler
 *   down for longer than the window) would be counted twice.
 *
 * So an id applied at t is forgotten once t < min(now, cut) - window. Until the cut is known
 * (the first refresh), nothing is forgotten.
 */
import type { RedisLike } from '@gambit/shared/redis';
import { deliveryCut, entryMs } from './trim.js';

/** ESTIMATOR_DEDUPE_WINDOW_MS default: 10 min, about 85 times the scheduler's default republish delay. */
export const DEFAULT_DEDUPE_WINDOW_MS = 10 * 60_000;
/** The smallest window accepted: a minute (clock skew between hosts and Redis, a republish). */
export const MIN_DEDUPE_WINDOW_MS = 60_000;

export class DedupeHorizon {
  private cutMs: number | undefined;

  constructor(readonly windowMs: number) {
    if (!Number.isSafeInteger(windowMs) || windowMs < MIN_DEDUPE_WINDOW_MS) throw new RangeError(`dedupe window must be an integer ≥ ${MIN_DEDUPE_WINDOW_MS} ms, got ${windowMs}`);
  }

  /**
   * Reads the streams' delivery cut (the smallest over the streams; a stream without a group
   * has nothing to redeliver). Returns the cut per stream (entry id) for the caller to trim with.
   */
  async refresh(redis: RedisLike, streams: readonly string[]): Promise<Map<string, string | undefined>> {
    const cuts = new Map<string, string | undefined>();
    let min = Number.POSITIVE_INFINITY;
    for (const stream of streams) {
      const cut = await deliveryCut(redis, stream);
      cuts.set(stream, cut);
      if (cut !== undefined) min = Math.min(min, entryMs(cut));
    }
    this.cutMs = min;
    return cuts;
  }

  /** Ids applied before this (ms) may be forgotten; undefined: not known yet, forget nothing. */
  forgetBeforeMs(nowMs: number): number | undefined {
    if (this.cutMs === undefined) return undefined;
    return Math.min(nowMs, this.cutMs) - this.windowMs;
  }
}
