/**
 * The recovery sweep (docs/runtime.md): any scheduler, periodically, looks at runs in the
 * `active` index that made no progress for a while, re-enqueues outbox intents that were written
 * but never confirmed enqueued (a scheduler died in between), and adds a `kick` event so some
 * scheduler reconciles the run (a scheduler died between two steps of an advance). Runs that
 * ended or never got created are dropped from the index. Every action here is idempotent.
 */
import type { Clock, Logger } from '@gambit/shared';
import { controlKeys, type KeySpace, type RedisLike, runKeys } from '@gambit/shared/redis';
import type { Queue } from 'bullmq';
import type { Outbox } from './engine/outbox.js';

export class RecoverySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly outbox: Outbox,
    private readonly advance: Queue,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: { intervalMs: number; staleMs: number },
  ) {}

  start(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.running !== undefined) return;
      this.running = this.sweep()
        .then(() => undefined)
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'recovery sweep failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** One sweep; returns the number of runs kicked. */
  async sweep(): Promise<number> {
    const now = this.clock.nowMs();
    const active = controlKeys(this.ks).active;
    const stale = await this.redis.zrangebyscore(active, '-inf', now - this.opts.staleMs, 'LIMIT', 0, 200);
    let kicked = 0;
    for (const member of stale) {
      const i = member.indexOf(':');
      const tenant = member.slice(0, i);
      const runId = member.slice(i + 1);
      const status = await this.redis.hget(runKeys(this.ks, tenant, runId).run, 'status');
      if (status === null) {
        // Never created (the submit died after indexing it), or long gone.
        if (now - Number((await this.redis.zscore(active, member)) ?? now) > 10 * this.opts.staleMs) await this.redis.zrem(active, member);
        continue;
      }
      await this.outbox.flush(tenant, runId, now, this.opts.staleMs);
      // Push its score forward so one stalled run is kicked once per stale period, not every sweep.
      await this.redis.zadd(active, now, member);
      const bucket = Math.floor(now / this.opts.staleMs);
      await this.advance.add('kick', { type: 'kick', tenant, runId, reason: 'recovery' }, { jobId: `kick~${tenant}~${runId}~${bucket}`, removeOnComplete: true, removeOnFail: { age: 3600 } });
      kicked++;
      if (status !== 'running') this.log.debug({ tenant, runId, status }, 'settling a finished run');
    }
    return kicked;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
