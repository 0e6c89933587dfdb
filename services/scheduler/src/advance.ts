/**
 * The `advance` stream consumer (issue 13 item 1; docs/runtime.md): every scheduler process runs
 * one, reading the stream through the consumer group `schedulers`, so any scheduler may advance
 * any run and each event is processed by one of them.
 *
 * - Reads in batches (XREADGROUP COUNT = free slots, BLOCK), at most `concurrency` events in
 *   flight; acknowledges and deletes processed entries in batches (one XACK and one XDEL for every
 *   entry finished in the same turn of the event loop).
 * - An invalid event is dead-lettered at once (`{P:q}:advance:dead`, with the reason) and
 *   acknowledged: it would fail the same way every time.
 * - A processing error is retried in this process (up to `maxTries`, with a short backoff), then
 *   dead-lettered; the recovery sweep kicks the run anyway if it stops progressing.
 * - Entries of a scheduler that died stay pending in its name: every scheduler claims entries idle
 *   for longer than `claimIdleMs` (XAUTOCLAIM) and processes them, as BullMQ moved stalled jobs back.
 * - With queue shards (QUEUE_SHARDS, issue 13 item 4) there is one stream per shard: one read
 *   loop (and blocking connection) per stream, sharing the `concurrency` (each loop reads at most
 *   the free slots, so at most `shards` × `concurrency` may be in flight for a moment).
 */
import { type AdvanceEvent, AdvanceEventSchema, type Logger, zodIssues } from '@gambit/shared';
import { ADVANCE_GROUP, type AdvanceEntry, type advanceKeys, advanceStreams, ensureAdvanceGroup, type KeySpace, parseEntries, type RedisLike } from '@gambit/shared/redis';
import type { EngineDeps, RunEngine } from './engine/engine.js';
import { onPartial } from './engine/streaming.js';

export interface AdvanceConsumerOptions {
  /** This consumer's name in the group (the scheduler id: unique per process). */
  readonly consumerId: string;
  /** Events handled at once. */
  readonly concurrency: number;
  /** An entry pending this long (its scheduler died or hangs) is claimed by another scheduler. */
  readonly claimIdleMs: number;
  /** How long one XREADGROUP blocks (also bounds how long close() waits for the read loop). */
  readonly blockMs?: number;
  /** Tries per event before it is dead-lettered. */
  readonly maxTries?: number;
  /** QUEUE_SHARDS: the streams read (one per queue shard). */
  readonly shards?: number;
}

/** One stream this consumer reads: its keys, its blocking connection, its pending acks. */
interface StreamState {
  readonly keys: ReturnType<typeof advanceKeys>;
  readonly reader: RedisLike;
  readonly toAck: string[];
  ackScheduled: Promise<void> | undefined;
  lastClaimMs: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class AdvanceConsumer {
  private readonly streams: StreamState[];
  private readonly inflight = new Set<Promise<void>>();
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly engine: RunEngine,
    private readonly deps: EngineDeps,
    private readonly opts: AdvanceConsumerOptions,
    private readonly log: Logger,
  ) {
    // Each blocking read has a connection of its own, so it never delays other commands.
    this.streams = advanceStreams(ks, opts.shards ?? 1).map((keys) => {
      const reader = (redis as { duplicate(): RedisLike }).duplicate();
      reader.on('error', (err: unknown) => this.log.warn({ err: String(err), stream: keys.stream }, 'advance reader connection error'));
      return { keys, reader, toAck: [], ackScheduled: undefined, lastClaimMs: 0 };
    });
  }

  /** Creates the groups if needed and starts the read loops. */
  async waitUntilReady(): Promise<void> {
    await Promise.all(this.streams.map((st) => ensureAdvanceGroup(this.redis, this.ks, st.keys.stream)));
    this.loop ??= Promise.all(this.streams.map((st) => this.run(st))).then(() => undefined);
  }

  private async run(st: StreamState): Promise<void> {
    const blockMs = this.opts.blockMs ?? 500;
    while (!this.stopped) {
      try {
        if (this.inflight.size >= this.opts.concurrency) {
          await Promise.race(this.inflight);
          continue;
        }
        const now = Date.now();
        if (now - st.lastClaimMs >= this.opts.claimIdleMs / 2) {
          st.lastClaimMs = now;
          await this.claimStale(st);
          continue;
        }
        const free = this.opts.concurrency - this.inflight.size;
        const res = (await st.reader.xreadgroup('GROUP', ADVANCE_GROUP, this.opts.consumerId, 'COUNT', free, 'BLOCK', blockMs, 'STREAMS', st.keys.stream, '>')) as Array<[string, unknown]> | null;
        if (res === null) continue;
        for (const [, entries] of res) for (const e of parseEntries(entries)) this.dispatch(st, e);
      } catch (err) {
        if (this.stopped) break;
        if (String(err).includes('NOGROUP')) {
          // The stream was deleted (e.g. FLUSHALL): recreate the group and go on.
          await ensureAdvanceGroup(this.redis, this.ks, st.keys.stream).catch(() => undefined);
        } else {
          this.log.warn({ err: String(err), stream: st.keys.stream }, 'advance read failed');
        }
        await sleep(200);
      }
    }
  }

  /** Takes over entries left pending by a scheduler that died (or hangs) and processes them. */
  private async claimStale(st: StreamState): Promise<void> {
    const free = Math.max(1, this.opts.concurrency - this.inflight.size);
    const res = (await this.redis.xautoclaim(st.keys.stream, ADVANCE_GROUP, this.opts.consumerId, this.opts.claimIdleMs, '0-0', 'COUNT', free)) as [string, unknown, unknown?];
    const entries = parseEntries(res[1]);
    if (entries.length > 0) this.log.info({ claimed: entries.length, stream: st.keys.stream }, 'advance events of another scheduler claimed');
    for (const e of entries) this.dispatch(st, e);
  }

  private dispatch(st: StreamState, entry: AdvanceEntry): void {
    const p: Promise<void> = this.processEntry(st, entry)
      .catch((err: unknown) => this.log.error({ entryId: entry.id, err: String(err) }, 'advance event not processed'))
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async processEntry(st: StreamState, entry: AdvanceEntry): Promise<void> {
    const parsed = AdvanceEventSchema.safeParse(entry.data);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error, 'event');
      const reason = `invalid advance event: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`;
      this.log.error({ entryId: entry.id, issues }, 'invalid advance event');
      await this.deadLetter(st, entry, reason);
      return;
    }
    const maxTries = this.opts.maxTries ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.handle(parsed.data);
        break;
      } catch (err) {
        if (attempt >= maxTries) {
          this.log.warn({ entryId: entry.id, err: String(err), tries: attempt }, 'advance event failed');
          await this.deadLetter(st, entry, `failed after ${attempt} tries: ${String(err)}`);
          return;
        }
        await sleep(100 * 4 ** (attempt - 1));
      }
    }
    await this.ack(st, entry.id);
  }

  private async deadLetter(st: StreamState, entry: AdvanceEntry, reason: string): Promise<void> {
    const data = typeof entry.data === 'string' ? entry.data : JSON.stringify(entry.data);
    await this.redis.xadd(st.keys.dead, 'MAXLEN', '~', 10_000, '*', 'id', entry.id, 'e', data, 'reason', reason);
    await this.ack(st, entry.id);
  }

  /** Acknowledges (and deletes) the entry, together with every other entry finished this turn. */
  private ack(st: StreamState, id: string): Promise<void> {
    st.toAck.push(id);
    st.ackScheduled ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        const ids = st.toAck.splice(0);
        st.ackScheduled = undefined;
        // Two commands sent back to back, not a pipeline: this is BullMQ's connection, and an
        // ioredis pipeline copies every script BullMQ defined on it onto itself (issue 13 item 1:
        // that copy cost more CPU than the acknowledgement). The order on the connection is the same.
        Promise.all([this.redis.xack(st.keys.stream, ADVANCE_GROUP, ...ids), this.redis.xdel(st.keys.stream, ...ids)]).then(() => resolve(), reject);
      });
    });
    return st.ackScheduled;
  }

  async handle(ev: AdvanceEvent): Promise<void> {
    if (ev.type === 'partial') {
      await onPartial(this.deps, this.engine, ev);
      return;
    }
    await this.engine.reconcile(ev.tenant, ev.runId);
  }

  /** For /readyz: consuming, not closing. */
  running(): boolean {
    return this.loop !== undefined && !this.stopped;
  }

  /** Stops reading; in-flight events finish and are acknowledged; the rest wait for other schedulers. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopped = true;
      await this.loop;
      await Promise.allSettled([...this.inflight]);
      await Promise.all(this.streams.map((st) => st.ackScheduled?.catch(() => undefined)));
      for (const st of this.streams) st.reader.disconnect();
    })();
    return this.closing;
  }
}
