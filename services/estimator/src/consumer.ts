/**
 * Reads the outcomes stream through the consumer group `estimators` (ARCHITECTURE.md), so
 * several estimators share the load: XREADGROUP for new entries (on its own blocking
 * connection), XAUTOCLAIM for entries another consumer left pending longer than `claimIdleMs`
 * (its estimator died), XACK after an entry was handled. An entry is acked only after its
 * effects are in Redis; a crash before the ack means redelivery, which the idempotent Lua
 * update absorbs.
 */
import type { Logger } from '@gambit/shared';
import { type KeySpace, MAX_OUTCOME_SHARDS, outcomeStreams, type RedisLike } from '@gambit/shared/redis';
import type { OutcomeProcessor } from './processor.js';

export const CONSUMER_GROUP = 'estimators';

type Entry = [id: string, fields: string[] | null];

export interface ConsumerOptions {
  readonly consumer: string;
  readonly stream: string;
  readonly batch: number;
  readonly blockMs: number;
  readonly claimIdleMs: number;
  readonly claimIntervalMs: number;
}

export class StreamConsumer {
  private stopping = false;
  private loopP: Promise<void> | undefined;
  private claimTimer: NodeJS.Timeout | undefined;
  private claiming = false;
  /** XACKs sent and not yet answered (handle). */
  private readonly acks = new Set<Promise<void>>();

  constructor(
    /** Commands (acks, claims, Lua). */
    private readonly redis: RedisLike,
    /** A dedicated connection for the blocking XREADGROUP. */
    private readonly blocking: RedisLike,
    private readonly processor: OutcomeProcessor,
    private readonly log: Logger,
    private readonly opts: ConsumerOptions,
  ) {}

  async start(): Promise<void> {
    try {
      // From '0': outcomes published before any estimator existed are not lost.
      await this.redis.xgroup('CREATE', this.opts.stream, CONSUMER_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
    this.loopP = this.loop();
    this.claimTimer = setInterval(() => void this.claim(), this.opts.claimIntervalMs);
  }

  private read(cursor: string): Promise<Entry[]> {
    return (
      this.blocking.xreadgroup(
        'GROUP', CONSUMER_GROUP, this.opts.consumer,
        'COUNT', this.opts.batch,
        'BLOCK', this.opts.blockMs,
        'STREAMS', this.opts.stream, cursor,
      ) as Promise<Array<[string, Entry[]]> | null>
    ).then((res) => res?.[0]?.[1] ?? []);
  }

  private async loop(): Promise<void> {
    // First our own pending entries (a restart under the same consumer name), then new ones.
    let cursor = '0';
    // New entries only: the next batch is read (on the blocking connection) while this one is
    // applied. Never while reading our own pending entries ('0' would return them again).
    let next: Promise<Entry[]> | undefined;
    while (!this.stopping || next !== undefined) {
      try {
        // Our own pending entries are read again until none is left: the acks of those handled
        // must have landed first (they travel on another connection than the read).
        if (next === undefined && cursor === '0' && this.acks.size > 0) await Promise.all([...this.acks]);
        const reading = next ?? this.read(cursor);
        next = undefined;
        const entries = await reading;
        if (cursor === '0' && entries.length === 0) cursor = '>';
        // Once stopping, a batch already read is still applied and acked, and no more is read.
        if (cursor === '>' && !this.stopping) {
          next = this.read(cursor);
          next.catch(() => undefined); // awaited (and its error handled) on the next turn
        }
        if (entries.length > 0) await this.handle(entries);
      } catch (err) {
        if (this.stopping) break;
        this.log.warn({ err: String(err) }, 'outcome read failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async claim(): Promise<void> {
    if (this.claiming || this.stopping) return;
    this.claiming = true;
    try {
      let start = '0-0';
      for (;;) {
        const res = (await this.redis.xautoclaim(
          this.opts.stream, CONSUMER_GROUP, this.opts.consumer, this.opts.claimIdleMs, start, 'COUNT', this.opts.batch,
        )) as [string, Entry[], string[]?];
        const entries = res[1] ?? [];
        if (entries.length > 0) {
          this.log.info({ claimed: entries.length }, 'took over outcome entries left pending by another estimator');
          await this.handle(entries);
        }
        start = res[0];
        if (start === '0-0' || this.stopping) break;
      }
    } catch (err) {
      this.log.warn({ err: String(err) }, 'XAUTOCLAIM failed');
    } finally {
      this.claiming = false;
    }
  }

  /**
   * Applies a batch (issue 13 item 2: one script per batch, processor.processBatch) and acks the
   * handled entries in one XACK. A crash between the two leaves them pending: they are
   * redelivered and the outcome-id dedupe makes the second application a no-op.
   */
  private async handle(entries: Entry[]): Promise<void> {
    const done = await this.processor.processBatch(entries);
    if (done.length === 0) return;
    // Not awaited: the next batch is handled while the XACK travels (it leaves with that batch's
    // script, auto-pipelined). An ack that fails leaves its entries pending: they come back and
    // count as duplicates. stop() waits for the acks in flight.
    const ack: Promise<void> = this.redis.xack(this.opts.stream, CONSUMER_GROUP, ...done).then(
      () => void this.acks.delete(ack),
      (err: unknown) => {
        this.acks.delete(ack);
        this.log.warn({ entries: done.length, err: String(err) }, 'XACK failed; the entries stay pending and will be redelivered');
      },
    );
    this.acks.add(ack);
  }

  /** For /readyz: the read loop is started and not stopping. */
  running(): boolean {
    return this.loopP !== undefined && !this.stopping;
  }

  /** Stops intake and waits (up to `drainMs`) for the batch in hand and its XACK. Idempotent. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    if (this.claimTimer !== undefined) clearInterval(this.claimTimer);
    if (this.loopP === undefined) return;
    const deadline = Date.now() + drainMs + this.opts.blockMs;
    /** True when `p` did not settle before the deadline. */
    const late = async (p: Promise<unknown>): Promise<boolean> => {
      let t: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        p.then(() => false),
        new Promise<boolean>((r) => {
          t = setTimeout(() => r(true), Math.max(0, deadline - Date.now()));
        }),
      ]);
      if (t !== undefined) clearTimeout(t);
      return timedOut;
    };
    let timedOut = await late(this.loopP);
    while (this.claiming) await new Promise((r) => setTimeout(r, 10));
    if (!timedOut) timedOut = await late(Promise.all([...this.acks]));
    if (timedOut) this.log.warn({}, 'drain deadline passed; unacked entries will be claimed by another estimator');
  }
}

/**
 * Issue 13 item 4: outcomes in a shard this estimator does not read (a scheduler configured with
 * more GAMBIT_OUTCOME_SHARDS than the estimator) would never be applied. At start, a shard stream
 * beyond `shards` holding entries no `estimators` group has acknowledged stops the estimator with
 * the variable named (a stream left by an earlier, larger count and fully acked is fine).
 */
export async function assertNoUnreadShards(redis: RedisLike, ks: KeySpace, shards: number): Promise<void> {
  const all = outcomeStreams(ks, MAX_OUTCOME_SHARDS);
  for (let i = shards; i < all.length; i++) {
    const stream = all[i] as string;
    const len = await redis.xlen(stream);
    if (len === 0) continue;
    const info = (await redis.xinfo('STREAM', stream)) as unknown[];
    const lastId = String(info[info.indexOf('last-generated-id') + 1]);
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    const g = groups.find((x) => x[x.indexOf('name') + 1] === CONSUMER_GROUP);
    // Unread: never consumed, delivered up to an earlier entry, or delivered and not acked.
    const unread = g === undefined || String(g[g.indexOf('last-delivered-id') + 1]) !== lastId || Number(g[g.indexOf('pending') + 1]) > 0;
    if (unread) {
      throw new Error(
        `GAMBIT_OUTCOME_SHARDS: outcome stream ${stream} (shard ${i}) holds entries but this estimator reads only ${shards} shard(s); set GAMBIT_OUTCOME_SHARDS to the same value on every scheduler and estimator`,
      );
    }
  }
}
