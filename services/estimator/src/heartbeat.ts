/**
 * The estimator's periodic duties: the heartbeat schedulers watch (`controlKeys().heartbeat`,
 * estimator id → ms, every `everyMs`), and the cooldown sweep that moves a killed class back
 * to shadow (M9) and clears its kill entry. Shadow is set before the entry is cleared, so no
 * scheduler sees the class unkilled in its old stage; both steps are idempotent, so several
 * estimators sweeping at once, or one dying between the steps, is safe. Every `trimEveryMs` the
 * outcomes stream is trimmed of entries all groups have acknowledged.
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
import { trimAcknowledged } from './trim.js';

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
    private readonly opts: { estimatorId: string; everyMs: number; trimEveryMs: number },
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
      if (this.opts.trimEveryMs > 0 && now - this.lastTrimMs >= this.opts.trimEveryMs) {
        this.lastTrimMs = now;
        const removed = await trimAcknowledged(this.redis, c.outcomes);
        if (removed > 0) this.log.debug({ removed }, 'outcomes stream trimmed');
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'heartbeat/sweep failed');
    } finally {
      this.running = false;
    }
  }

  /** killed → shadow for every class whose cooldown has elapsed. */
  async sweep(): Promise<number> {
    const state = parseKillHash(await this.redis.hgetall(controlKeys(this.ks).kill));
    const now = this.clock.nowMs();
    let moved = 0;
    for (const [classId, e] of Object.entries(state.classes)) {
      const t = cooldownTransition('killed', e.untilMs ?? Number.POSITIVE_INFINITY, now);
      if (t === null) continue;
      const r = await estimatorSetStage(this.redis, this.ks, { classId, expected: '*', to: 'shadow', reason: t.reason, nowMs: now, reset: true });
      const c = await controlClearKill(this.redis, this.ks, { scope: 'class', id: classId, reason: t.reason, nowMs: now });
      if (c.changed) {
        moved++;
        this.log.info({ classId, stageApplied: r.applied, killVersion: c.version }, 'cooldown elapsed: class back to shadow');
      }
    }
    return moved;
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
