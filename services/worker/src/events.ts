/**
 * Publishes AdvanceEvents (attempt finished, partial output) to the `advance` queue that the
 * schedulers consume. Job ids are derived from the attempt (and the sequence number for
 * partials), so a retried job or a re-emitted event does not create a duplicate while the earlier
 * one is still kept by BullMQ. BullMQ job ids must not contain ':'.
 */
import { type AdvanceEvent, AdvanceEventSchema } from '@gambit/shared';
import { type KeySpace, QUEUES, queuePrefix, type RedisLike } from '@gambit/shared/redis';
import { Queue } from 'bullmq';

/** A BullMQ-safe id part: ':' (BullMQ's separator) and whitespace become '_'. */
export function jobIdPart(s: string): string {
  return s.replace(/[:\s]/g, '_');
}

export function finishedJobId(ev: { tenant: string; runId: string; attemptId: string }): string {
  return `fin-${jobIdPart(ev.tenant)}-${jobIdPart(ev.runId)}-${jobIdPart(ev.attemptId)}`;
}

export function partialJobId(ev: { tenant: string; runId: string; attemptId: string; seq: number }): string {
  return `partial-${jobIdPart(ev.tenant)}-${jobIdPart(ev.runId)}-${jobIdPart(ev.attemptId)}-${ev.seq}`;
}

export interface AdvanceSink {
  publish(ev: AdvanceEvent): Promise<void>;
}

export class AdvancePublisher implements AdvanceSink {
  private readonly queue: Queue;
  private closing: Promise<void> | undefined;

  constructor(connection: RedisLike, ks: KeySpace) {
    this.queue = new Queue(QUEUES.advance, {
      connection,
      prefix: queuePrefix(ks),
      // Kept for an hour so the id dedupes a re-emitted event; schedulers' steps are idempotent anyway.
      defaultJobOptions: { removeOnComplete: { age: 3600, count: 100_000 }, removeOnFail: { age: 24 * 3600 } },
    });
  }

  async publish(ev: AdvanceEvent): Promise<void> {
    const data = AdvanceEventSchema.parse(ev);
    let jobId: string;
    if (data.type === 'attempt_finished') jobId = finishedJobId(data);
    else if (data.type === 'partial') jobId = partialJobId(data);
    else jobId = `kick-${jobIdPart(data.tenant)}-${jobIdPart(data.runId)}-${Date.now()}`;
    await this.queue.add(data.type, data, { jobId });
  }

  close(): Promise<void> {
    this.closing ??= this.queue.close();
    return this.closing;
  }
}
