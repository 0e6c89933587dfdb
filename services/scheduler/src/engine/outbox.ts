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

export class Outbox {
  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly fair: FairDispatcher,
    private readonly opsAttempts: number,
    private readonly log: Logger,
  ) {}

  /** Enqueues one intent for fair dispatch, removes it from the outbox, and pumps its lane. */
  async send(tenant: string, runId: string, intent: Intent): Promise<void> {
    const lane = intent.queue === QUEUES.ops ? 'ops' : 'spec';
    const priority = Math.min(MAX_PRIORITY, Math.max(1, intent.priority ?? MAX_PRIORITY));
    const opts: JobsOptions = {
      // Job payloads (the rendered prompt) are deleted when done, failed included (issue 13
      // item 3, issue 10 item 9): the attempt record keeps what happened; a re-sent job id is
      // fenced by the worker's startAttempt, so nothing needs the finished job for de-duplication.
      removeOnComplete: true,
      removeOnFail: true,
      ...(lane === 'ops' ? { attempts: this.opsAttempts, backoff: { type: 'exponential', delay: 100 } } : { attempts: 1, priority }),
    };
    // Within the tenant: first come first served on `ops`; by EV (the BullMQ priority) on `spec`.
    // The enqueue and the pump's claim are one script call (issue 13 item 1).
    const { claimed } = await this.fair.enqueueAndClaim({ lane, tenant, jobId: intent.jobId, name: intent.name, data: intent.data, opts }, lane === 'ops' ? intent.createdAtMs : priority);
    // Once the job is on its ready list (or claimed) the intent may go, and what was claimed may
    // be dispatched: both at once (the dispatch does not wait for the intent's deletion).
    await Promise.all([this.redis.hdel(runKeys(this.ks, tenant, runId).intents, intent.jobId), this.fair.dispatch(lane, claimed)]);
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
