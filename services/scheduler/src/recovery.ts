/**
 * The recovery sweep (docs/runtime.md): any scheduler, periodically, looks at runs in the
 * `active` index that made no progress for a while, re-enqueues outbox intents that were written
 * but never confirmed enqueued (a scheduler died in between), and adds a `kick` event so some
 * scheduler reconciles the run (a scheduler died between two steps of an advance). Runs that
 * ended or never got created are dropped from the index. It also settles budget reservations
 * (M10) left open by a scheduler that died between reserving and launching, and recovers the fair
 * dispatcher's jobs (issue 10 item 4): claimed but never added to BullMQ, or outstanding after
 * their job ended unseen. Every action here is idempotent.
 */
import type { Clock, Logger } from '@gambit/shared';
import { type AdvanceSink, controlKeys, decodeAttempt, type FairDispatcher, type KeySpace, type RedisLike, runKeys, settleBudget, tenantKeys } from '@gambit/shared/redis';
import { z } from 'zod';
import type { Outbox } from './engine/outbox.js';

/** An open reservation as reserveBudget-1 records it (`open:<id>` in the tenant's budget hash). */
const OpenReservationSchema = z.object({ run: z.string(), a: z.string(), amt: z.number().int().nonnegative(), at: z.number() });

/**
 * M10: whether the attempt record `raw` is the launch of reservation `id`. Several schedulers may
 * reserve for the same attempt id (they decided the same node at the same epoch, or bought the
 * same guess); only the winner's launch carries its reservation id, and a loser that died before
 * releasing its own reservation must still be released. A record without `reservationId`
 * (written before the field existed) counts as the launch, as before.
 */
function launchedBy(raw: string | null, id: string, attemptId: string): boolean {
  if (raw === null) return false;
  const rid = decodeAttempt(raw, attemptId).reservationId;
  return rid === undefined || rid === id;
}

export class RecoverySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly outbox: Outbox,
    private readonly advance: AdvanceSink,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** `fair`: the fair dispatcher whose claimed and outstanding jobs the sweep also recovers (issue 10 item 4). */
    private readonly opts: { intervalMs: number; staleMs: number; fair?: FairDispatcher },
  ) {}

  start(): void {
    if (this.closed || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.running !== undefined) return;
      this.running = this.sweep()
        .then(() => this.sweepFolds())
        .then(() => this.sweepReservations())
        .then(() => this.opts.fair?.sweep(this.opts.staleMs))
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
      // An ended run's outbox is never sent (issue 11 D5): its reconcile discards it.
      if (status === 'running') await this.outbox.flush(tenant, runId, now, this.opts.staleMs);
      // Push its score forward so one stalled run is kicked once per stale period, not every sweep.
      await this.redis.zadd(active, now, member);
      await this.advance.publish({ type: 'kick', tenant, runId, reason: 'recovery' });
      kicked++;
      if (status !== 'running') this.log.debug({ tenant, runId, status }, 'settling a finished run');
    }
    return kicked;
  }

  /**
   * Issue 13 item 3: ended runs whose fold was put off (an attempt taken for lost may still be
   * billed late) are kicked once their time has come; their ended pass folds them. Returns the
   * number kicked.
   */
  async sweepFolds(): Promise<number> {
    const index = controlKeys(this.ks).fold;
    const due = await this.redis.zrangebyscore(index, '-inf', this.clock.nowMs(), 'LIMIT', 0, 200);
    for (const member of due) {
      const i = member.indexOf(':');
      await this.advance.publish({ type: 'kick', tenant: member.slice(0, i), runId: member.slice(i + 1), reason: 'recovery' });
      // After the kick is durable: a crash in between kicks it again, never loses it.
      await this.redis.zrem(index, member);
    }
    return due.length;
  }

  /**
   * M10: settles reservations whose launch never happened. A reservation older than `staleMs`
   * whose attempt exists in its run and carries its reservation id was launched (the scheduler
   * died before closing the record): the record is dropped and the launch's outcome settles it.
   * One whose attempt does not exist, or exists as another scheduler's launch, was never
   * launched: it is released under its own id, which is the id the reserving scheduler would
   * settle it under, so the two settle it once. Returns the number released.
   */
  async sweepReservations(): Promise<number> {
    const now = this.clock.nowMs();
    const index = controlKeys(this.ks).reservations;
    const due = await this.redis.zrangebyscore(index, '-inf', now - this.opts.staleMs, 'LIMIT', 0, 100);
    let released = 0;
    for (const tenant of due) {
      const budget = tenantKeys(this.ks, tenant).budget;
      let oldest = Number.POSITIVE_INFINITY;
      let cursor = '0';
      do {
        const [next, flat] = await this.redis.hscan(budget, cursor, 'MATCH', 'open:*', 'COUNT', 200);
        cursor = next;
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const field = flat[i] as string;
          const id = field.slice('open:'.length);
          const parsed = OpenReservationSchema.safeParse(JSON.parse(flat[i + 1] as string));
          if (!parsed.success) {
            this.log.warn({ tenant, field, issues: parsed.error.issues }, 'invalid open reservation dropped');
            await this.redis.hdel(budget, field);
            continue;
          }
          const r = parsed.data;
          if (now - r.at < this.opts.staleMs) {
            oldest = Math.min(oldest, r.at);
            continue;
          }
          if (launchedBy(await this.redis.hget(runKeys(this.ks, tenant, r.run).attempts, r.a), id, r.a)) {
            await this.redis.hdel(budget, field);
            continue;
          }
          // Settled only while still open: a launch that closed its record after the check above
          // is settled by its outcome (closeReservation), so it is never released twice.
          if (await settleBudget(this.redis, this.ks, { tenant, runId: r.run, settlementId: id, reservedNanoUsd: r.amt, wasteNanoUsd: 0, onlyIfOpen: true })) {
            released++;
            this.log.info({ tenant, reservationId: id, amountNanoUsd: r.amt }, 'unlaunched reservation released');
          }
        }
      } while (cursor !== '0');
      // Why not ZREM when none is left: a reservation recorded between the scan and the ZREM would
      // lose its index entry. An idle tenant is looked at again after ten stale periods instead.
      await this.redis.zadd(index, Number.isFinite(oldest) ? oldest : now + 10 * this.opts.staleMs, tenant);
    }
    return released;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
