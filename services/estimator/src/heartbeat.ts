/**
 * The estimator's periodic duties: the heartbeat schedulers watch (`controlKeys().heartbeat`,
 * estimator id → ms, every `everyMs`), and the cooldown sweep that moves a killed class back
 * to shadow (M9) and clears its kill entry. Shadow is set before the entry is cleared, so no
 * scheduler sees the class unkilled in its old stage; both steps are idempotent, so several
 * estimators sweeping at once, or one dying between the steps, is safe. Every tick the outcome
 * streams' delivery cut is read for the dedupe horizon (dedupe-horizon.ts); every `trimEveryMs`
 * each outcome stream (shard) is trimmed of entries all groups have acknowledged.
 */
import {
  type Clock,
  controlClearKill,
  cooldownTransition,
  estimatorSetStage,
  type Logger,
  parseKillHash,
} from '@gambit/shared';
import { controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import type { DedupeHorizon } from './dedupe-horizon.js';
import { trimAcknowledged, trimBefore } from './trim.js';

export class Duties {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped: Promise<void> | undefined;
  private lastTrimMs = 0;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    private readonly log: Logger,
    /**
     * `streams`: the outcome streams to trim (default: the single `controlKeys().outcomes`);
     * `horizon`: the outcome-id dedupe's horizon, refreshed from the streams every tick.
     */
    private readonly opts: { estimatorId: string; everyMs: number; trimEveryMs: number; streams?: readonly string[]; horizon?: DedupeHorizon },
  ) {}

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.everyMs);
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped !== undefined) return;
    this.running = true;
    try {
      const c = controlKeys(this.ks);
      await this.redis.hset(c.heartbeat, this.opts.estimatorId, String(this.clock.nowMs()));
      await this.sweep();
      const now = this.clock.nowMs();
      const streams = this.opts.streams ?? [c.outcomes];
      const trim = this.opts.trimEveryMs > 0 && now - this.lastTrimMs >= this.opts.trimEveryMs;
      // The dedupe horizon follows the streams' delivery cut every tick (two reads per stream);
      // trimming uses the same cut.
      const cuts = this.opts.horizon !== undefined ? await this.opts.horizon.refresh(this.redis, streams) : undefined;
      if (trim) {
        this.lastTrimMs = now;
        for (const stream of streams) {
          const removed = cuts === undefined ? await trimAcknowledged(this.redis, stream) : await trimBefore(this.redis, stream, cuts.get(stream));
          if (removed > 0) this.log.debug({ stream, removed }, 'outcomes stream trimmed');
        }
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'heartbeat/sweep failed');
    } finally {
      this.running = false;
    }
  }

  /**
   * Expired kills: a drift-killed class whose cooldown has elapsed goes killed → shadow (from its
   * prior, M9) and its entry is cleared; an operator kill with an expiry that has passed (class,
   * tenant or global) is cleared and nothing else changes: an operator kill never touched the
   * class's stage or posterior. Kills without an expiry stay until revived.
   */
  async sweep(): Promise<number> {
    const state = parseKillHash(await this.redis.hgetall(controlKeys(this.ks).kill));
    const now = this.clock.nowMs();
    let moved = 0;
    for (const [classId, e] of Object.entries(state.classes)) {
      if (e.source === 'operator') {
        if (e.untilMs !== undefined && now >= e.untilMs && (await this.clear('class', classId, 'operator kill expired', now))) moved++;
        continue;
      }
      const t = cooldownTransition('killed', e.untilMs ?? Number.POSITIVE_INFINITY, now);
      if (t === null) continue;
      const r = await estimatorSetStage(this.redis, this.ks, { classId, expected: '*', to: 'shadow', reason: t.reason, nowMs: now, reset: true });
      const c = await controlClearKill(this.redis, this.ks, { scope: 'class', id: classId, reason: t.reason, nowMs: now });
      if (c.changed) {
        moved++;
        this.log.info({ classId, stageApplied: r.applied, killVersion: c.version }, 'cooldown elapsed: class back to shadow');
      }
    }
    for (const [tenant, e] of Object.entries(state.tenants)) {
      if (e.untilMs !== undefined && now >= e.untilMs && (await this.clear('tenant', tenant, 'operator kill expired', now))) moved++;
    }
    const g = state.global;
    if (g?.untilMs !== undefined && now >= g.untilMs && (await this.clear('global', '', 'operator kill expired', now))) moved++;
    return moved;
  }

  private async clear(scope: 'global' | 'tenant' | 'class', id: string, reason: string, now: number): Promise<boolean> {
    const c = await controlClearKill(this.redis, this.ks, { scope, id, reason, nowMs: now });
    if (c.changed) this.log.info({ scope, id, killVersion: c.version }, 'kill expired: cleared');
    return c.changed;
  }

  /** Stops the timer and removes this estimator's heartbeat entry. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      while (this.running) await new Promise((r) => setTimeout(r, 10));
      await this.redis.hdel(controlKeys(this.ks).heartbeat, this.opts.estimatorId).catch(() => undefined);
    })();
    return this.stopped;
  }
}
