/**
 * Estimator heartbeat freshness as a scheduler judges it (M9.5 fail-safe). Freshness is judged
 * by *change*: an estimator is alive when its beat value advanced within `staleMs` of the
 * observer's own clock, so clock skew between machines cannot make a dead estimator look alive.
 * On first sight a beat counts as fresh only if it is within `staleMs` of the observer's clock.
 * Pure: the caller feeds observations with its own `nowMs`.
 */
export class HeartbeatTracker {
  private readonly seen = new Map<string, { value: number; changedAtMs: number }>();
  private lastAliveMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly staleMs: number) {}

  /** Records one HGETALL of the heartbeat hash (estimator id → beat ms). */
  observe(beats: Record<string, string>, nowMs: number): void {
    for (const [id, raw] of Object.entries(beats)) {
      const value = Number(raw);
      if (!Number.isFinite(value)) continue;
      const prev = this.seen.get(id);
      if (prev === undefined) {
        const alive = nowMs - value <= this.staleMs;
        this.seen.set(id, { value, changedAtMs: alive ? nowMs : Number.NEGATIVE_INFINITY });
      } else if (value > prev.value) {
        this.seen.set(id, { value, changedAtMs: nowMs });
      }
    }
    // An id that vanished (an estimator that shut down cleanly removes its entry) is dead now.
    for (const id of [...this.seen.keys()]) if (!(id in beats)) this.seen.delete(id);
    this.lastAliveMs = Number.NEGATIVE_INFINITY;
    for (const s of this.seen.values()) this.lastAliveMs = Math.max(this.lastAliveMs, s.changedAtMs);
  }

  fresh(nowMs: number): boolean {
    return nowMs - this.lastAliveMs <= this.staleMs;
  }
}
