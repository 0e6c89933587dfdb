/**
 * Throttled partial-output events of one LLM attempt (M8 streaming re-estimation): each event
 * carries the whole text so far with an increasing `seq`, at most one per `minIntervalMs` unless
 * `minDeltas` stream deltas arrived since the last one, and always the final text. Events are
 * sent one after another (never two in flight), so they reach the queue in `seq` order.
 */
import type { Logger } from '@gambit/shared';
import type { AdvanceSink } from './events.js';

export interface PartialThrottle {
  readonly minIntervalMs: number;
  readonly minDeltas: number;
}

/** Sequence numbers of try n start at (n - 1) * SEQ_PER_TRY, so a retry's partials sort after. */
export const SEQ_PER_TRY = 1_000_000;

export class PartialPublisher {
  private seq: number;
  private deltasSince = 0;
  private lastAtMs = Number.NEGATIVE_INFINITY;
  private lastText = '';
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: AdvanceSink,
    private readonly ref: { tenant: string; runId: string; nodeId: string; attemptId: string },
    tryNo: number,
    private readonly throttle: PartialThrottle,
    private readonly nowMs: () => number,
    private readonly logger: Logger,
  ) {
    this.seq = (tryNo - 1) * SEQ_PER_TRY;
  }

  /** Called after each delta with the whole text so far. */
  onDelta(text: string): void {
    this.deltasSince++;
    const now = this.nowMs();
    if (this.deltasSince >= this.throttle.minDeltas || now - this.lastAtMs >= this.throttle.minIntervalMs) this.send(text, now);
  }

  /** Sends the final text (if not already sent) and waits for every event to be enqueued. */
  async finish(text: string): Promise<void> {
    if (text !== this.lastText) this.send(text, this.nowMs());
    await this.chain;
  }

  /** Waits for the events already sent (after an abort: no final text is published). */
  async flush(): Promise<void> {
    await this.chain;
  }

  private send(text: string, now: number): void {
    this.deltasSince = 0;
    this.lastAtMs = now;
    this.lastText = text;
    const ev = { type: 'partial' as const, ...this.ref, text, seq: this.seq++ };
    // A lost partial only delays re-estimation; the attempt's result is what counts.
    this.chain = this.chain.then(() =>
      this.sink.publish(ev).catch((err: unknown) => this.logger.warn({ err, attemptId: this.ref.attemptId, seq: ev.seq }, 'partial event not published')),
    );
  }
}
