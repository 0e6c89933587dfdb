/**
 * The run's `intents` outbox (docs/runtime.md): a launch script writes the job into the run's
 * `intents` hash in the same atomic step as the state transition; this module puts it on its
 * tenant's ready list for fair dispatch (issue 10 item 4, shared/redis/fair.ts: an idempotent
 * enqueue by the deterministic job id) and only then deletes the intent, while it pumps the lane so
 * the job goes to its BullMQ queue as soon as a worker slot is free. A process that dies in
 * between leaves the intent, and the recovery sweep of any scheduler enqueues it again. A
 * duplicate job is harmless: the worker's startAttempt fences it.
 */
import type { Logger } from '@gambit/shared';
import { type FairDispatcher, type KeySpace, QUEUES, type RedisLike, runKeys } from '@gambit/shared/redis';
import type { JobsOptions } from 'bullmq';
import { type Intent, IntentSchema, MAX_PRIORITY } from './jobs.js';

/**
 * Issue 13 item 1: how long the deletion of an intent the engine sent may wait for the run's next
 * read to carry it (readRun-5.lua) before it is sent on its own. Well under the recovery sweep's
 * stale period (RECOVERY_STALE_MS, 5 s by default), after which the sweep would send a run's
 * intents again (harmless, an enqueue is idempotent by job id and a job of a finished attempt is
 * fenced by startAttempt, but a waste).
 */
export const DEFER_DELETE_MS = 1_000;

export class Outbox {
  /**
   * Intents enqueued by `send` with `deferDelete`, by run, not yet deleted from the outbox: the
   * run's next read in this process deletes them (`takeDeferred`), or `flushDeferred` after
   * DEFER_DELETE_MS. Lost with the process: then the intents stay until the run's ended pass
   * discards them or a stale run's sweep sends them again (see DEFER_DELETE_MS).
   */
  private readonly deferred = new Map<string, { readonly tenant: string; readonly runId: string; readonly jobIds: string[]; readonly atMs: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly fair: FairDispatcher,
    private readonly opsAttempts: number,
    private readonly log: Logger,
  ) {}

  /**
   * Enqueues one intent for fair dispatch, removes it from the outbox, and pumps its lane.
   * `deferDelete` (the engine's launches, issue 13 item 1): the removal is left to the run's next
   * read in this process (`takeDeferred`), or to `flushDeferred` within DEFER_DELETE_MS.
   */
  async send(tenant: string, runId: string, intent: Intent, how: { deferDelete?: boolean } = {}): Promise<void> {
    const lane = intent.queue === QUEUES.ops ? 'ops' : 'spec';
    const priority = Math.min(MAX_PRIORITY, Math.max(1, intent.priority ?? MAX_PRIORITY));
    const opts: JobsOptions = {
      // Job payloads (the rendered prompt) are deleted when done, failed included (issue 13
      // item 3, issue 10 item 9): the attempt record keeps what happened; a re-sent job id is
      // fenced by the worker's startAttempt, so nothing needs the finished job for de-duplication.
      // Completed: by the worker's own `removeOnComplete` (services/worker/src/main.ts), not an
      // option stored in every job hash (issue 13 item 3: 24 bytes a job). Failed: here, because
      // BullMQ's stalled-job script, which fails a job whose worker died, reads the job's own.
      removeOnFail: true,
      ...(lane === 'ops' ? { attempts: this.opsAttempts, backoff: { type: 'exponential', delay: 100 } } : { attempts: 1, priority }),
    };
    // Within the tenant: first come first served on `ops`; by EV (the BullMQ priority) on `spec`.
    // The enqueue and the pump's claim are one script call (issue 13 item 1).
    const { claimed } = await this.fair.enqueueAndClaim({ lane, tenant, jobId: intent.jobId, name: intent.name, data: intent.data, opts }, lane === 'ops' ? intent.createdAtMs : priority);
    // Once the job is on its ready list (or claimed) the intent may go, and what was claimed may
    // be dispatched: both at once (the dispatch does not wait for the intent's deletion).
    if (how.deferDelete === true) {
      this.defer(tenant, runId, intent.jobId);
      await this.fair.dispatch(lane, claimed);
      return;
    }
    await Promise.all([this.redis.hdel(runKeys(this.ks, tenant, runId).intents, intent.jobId), this.fair.dispatch(lane, claimed)]);
  }

  private defer(tenant: string, runId: string, jobId: string): void {
    const key = `${tenant}\u0000${runId}`;
    const e = this.deferred.get(key);
    if (e !== undefined) e.jobIds.push(jobId);
    else this.deferred.set(key, { tenant, runId, jobIds: [jobId], atMs: performance.now() });
    this.timer ??= setTimeout(() => this.onTimer(), DEFER_DELETE_MS);
    this.timer.unref();
  }

  /** The run's intents whose deletion waits (see `send`): the caller deletes them, or gives them back (`restoreDeferred`). */
  takeDeferred(tenant: string, runId: string): string[] | undefined {
    const key = `${tenant}\u0000${runId}`;
    const e = this.deferred.get(key);
    if (e === undefined) return undefined;
    this.deferred.delete(key);
    return e.jobIds;
  }

  /** Deletions taken by `takeDeferred` that were not made (the read failed): they wait again. */
  restoreDeferred(tenant: string, runId: string, jobIds: readonly string[]): void {
    for (const jobId of jobIds) this.defer(tenant, runId, jobId);
  }

  private onTimer(): void {
    this.timer = undefined;
    this.flushDeferred(DEFER_DELETE_MS).catch((err: unknown) => this.log.warn({ err: String(err) }, 'outbox: deferred intent deletions failed (the runs keep them until they are read or end)'));
  }

  /** Deletes the intents whose deletion has waited `minAgeMs` or more (0: all); the rest wait on. */
  async flushDeferred(minAgeMs = 0): Promise<void> {
    const now = performance.now();
    const due: Array<{ tenant: string; runId: string; jobIds: string[] }> = [];
    for (const [key, e] of this.deferred) {
      if (now - e.atMs < minAgeMs) continue;
      this.deferred.delete(key);
      due.push(e);
    }
    if (this.deferred.size > 0) {
      this.timer ??= setTimeout(() => this.onTimer(), DEFER_DELETE_MS);
      this.timer.unref();
    }
    // Sent together (auto-pipelined: one write for the lot).
    const r = await Promise.allSettled(due.map((e) => this.redis.hdel(runKeys(this.ks, e.tenant, e.runId).intents, ...e.jobIds)));
    r.forEach((x, i) => {
      const e = due[i];
      if (x.status === 'rejected' && e !== undefined) this.restoreDeferred(e.tenant, e.runId, e.jobIds);
    });
  }

  /** Stops the timer after deleting every deferred intent (shutdown). */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const due = [...this.deferred.values()];
    this.deferred.clear();
    await Promise.allSettled(due.map((e) => this.redis.hdel(runKeys(this.ks, e.tenant, e.runId).intents, ...e.jobIds)));
  }

  /** Sends every intent of the run older than `minAgeMs` (0: all). Returns how many were sent. */
  async flush(tenant: string, runId: string, nowMs: number, minAgeMs = 0): Promise<number> {
    const raw = await this.redis.hgetall(runKeys(this.ks, tenant, runId).intents);
    let sent = 0;
    for (const [jobId, json] of Object.entries(raw)) {
      const parsed = IntentSchema.safeParse(JSON.parse(json));
      if (!parsed.success) {
        this.log.error({ tenant, runId, jobId, issues: parsed.error.issues }, 'invalid intent in outbox: dropped');
        await this.redis.hdel(runKeys(this.ks, tenant, runId).intents, jobId);
        continue;
      }
      if (nowMs - parsed.data.createdAtMs < minAgeMs) continue;
      try {
        await this.send(tenant, runId, parsed.data);
        sent++;
      } catch (err) {
        // One intent that cannot be sent must not block the others; it stays for the next sweep.
        this.log.warn({ tenant, runId, jobId, err: String(err) }, 'outbox intent not sent');
      }
    }
    return sent;
  }
}
