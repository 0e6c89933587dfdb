/**
 * Publishes AdvanceEvents (attempt finished, partial output) to the `advance` stream that the
 * schedulers consume (packages/shared/src/redis/advance.ts): one XADD per event. A re-emitted
 * event is a second entry; the schedulers' steps are idempotent, so it costs one more reconcile.
 */
import type { AdvanceEvent } from '@gambit/shared';
import { type KeySpace, publishAdvance, type RedisLike } from '@gambit/shared/redis';

export interface AdvanceSink {
  publish(ev: AdvanceEvent): Promise<void>;
}

export class AdvancePublisher implements AdvanceSink {
  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    /** QUEUE_SHARDS: an event goes to its tenant's shard's stream. */
    private readonly shards = 1,
  ) {}

  async publish(ev: AdvanceEvent): Promise<void> {
    await publishAdvance(this.redis, this.ks, ev, this.shards);
  }

  /** Nothing to close: the publisher uses the worker's command connection. */
  async close(): Promise<void> {}
}
