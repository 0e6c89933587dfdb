/**
 * The `advance` queue consumer: every scheduler process runs one, so any scheduler may advance
 * any run and each event is processed by one of them. An invalid event fails the job as
 * non-retryable (dead-letter in BullMQ's failed set, with the reason); a processing error is
 * retried by BullMQ, which is safe because every step is idempotent.
 */
import { type AdvanceEvent, AdvanceEventSchema, type Logger, zodIssues } from '@gambit/shared';
import { QUEUES, queuePrefix, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { EngineDeps, RunEngine } from './engine/engine.js';
import { onPartial } from './engine/streaming.js';

export class AdvanceConsumer {
  private readonly worker: Worker;
  private closing: Promise<void> | undefined;

  constructor(
    connection: RedisLike,
    ks: KeySpace,
    private readonly engine: RunEngine,
    private readonly deps: EngineDeps,
    concurrency: number,
    private readonly log: Logger,
  ) {
    this.worker = new Worker(QUEUES.advance, (job) => this.process(job), {
      connection,
      prefix: queuePrefix(ks),
      concurrency,
      autorun: true,
    });
    this.worker.on('failed', (job, err) => this.log.warn({ jobId: job?.id, err: String(err) }, 'advance event failed'));
    this.worker.on('error', (err) => this.log.warn({ err: String(err) }, 'advance worker error'));
  }

  private async process(job: Job): Promise<void> {
    const parsed = AdvanceEventSchema.safeParse(job.data);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error, 'event');
      this.log.error({ jobId: job.id, issues }, 'invalid advance event');
      throw new UnrecoverableError(`invalid advance event: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    }
    await this.handle(parsed.data);
  }

  async handle(ev: AdvanceEvent): Promise<void> {
    if (ev.type === 'partial') {
      await onPartial(this.deps, this.engine, ev);
      return;
    }
    await this.engine.reconcile(ev.tenant, ev.runId);
  }

  async waitUntilReady(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  /** For /readyz: consuming, not closing. */
  running(): boolean {
    return this.closing === undefined && this.worker.isRunning();
  }

  close(): Promise<void> {
    this.closing ??= this.worker.close();
    return this.closing;
  }
}
