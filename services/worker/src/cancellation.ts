/**
 * Cancellation of running attempts across processes (M6, M8). Each worker process subscribes to
 * the cancel channel and aborts the attempt if it runs it. Pub/sub drops messages for a
 * disconnected subscriber, so the status of every running attempt is also re-read every
 * `statusCheckMs` (the attempts hash is the truth; the message is only for speed).
 *
 * Each running attempt holds a lease: an AbortController that aborts on a cancel message, on a
 * status re-check that finds it cancelled or superseded (or at another epoch), on BullMQ's own
 * signal (lock lost, `cancelJob`), on worker shutdown, or when the operation's deadline passes
 * (issue 10 item 4). The lease remembers which came first.
 */
import { CancelMessageSchema, type Logger } from '@gambit/shared';
import { controlKeys, decodeAttempt, type KeySpace, type RedisLike, runKeys } from '@gambit/shared/redis';

export type AbortCause = 'cancelled' | 'shutdown' | 'lost' | 'deadline';

export interface AttemptLease {
  readonly signal: AbortSignal;
  /** Why the lease was aborted, or undefined while it runs. */
  cause(): AbortCause | undefined;
  /** Issue 10 item 4: aborts the attempt because its deadline passed (cause `deadline`). */
  expire(): void;
  release(): void;
}

export interface LeaseRef {
  readonly tenant: string;
  readonly runId: string;
  readonly attemptId: string;
  readonly epoch: number;
  readonly kind: 'authoritative' | 'speculative';
}

interface Entry {
  readonly ref: LeaseRef;
  readonly controller: AbortController;
  cause: AbortCause | undefined;
}

function leaseKey(tenant: string, runId: string, attemptId: string): string {
  return `${tenant}\u0000${runId}\u0000${attemptId}`;
}

export class CancelWatcher {
  private readonly entries = new Map<string, Set<Entry>>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private closed = false;
  private readonly channel: string;
  private readonly onMessage = (channel: string, message: string) => this.handleMessage(channel, message);

  constructor(
    private readonly redis: RedisLike,
    /** A dedicated connection: once subscribed it can run no other command. */
    private readonly subscriber: RedisLike,
    private readonly ks: KeySpace,
    private readonly statusCheckMs: number,
    private readonly logger: Logger,
  ) {
    this.channel = controlKeys(ks).cancelChannel;
  }

  async start(): Promise<void> {
    this.subscriber.on('message', this.onMessage);
    await this.subscriber.subscribe(this.channel);
    this.timer = setInterval(() => void this.recheck(), this.statusCheckMs);
  }

  /** Number of attempts running under a lease (for logs and tests). */
  get running(): number {
    let n = 0;
    for (const s of this.entries.values()) n += s.size;
    return n;
  }

  track(ref: LeaseRef, external?: AbortSignal): AttemptLease {
    const entry: Entry = { ref, controller: new AbortController(), cause: undefined };
    const key = leaseKey(ref.tenant, ref.runId, ref.attemptId);
    let set = this.entries.get(key);
    if (set === undefined) {
      set = new Set();
      this.entries.set(key, set);
    }
    set.add(entry);
    const onExternal = () => this.abort(entry, 'lost');
    if (external?.aborted) onExternal();
    else external?.addEventListener('abort', onExternal, { once: true });
    return {
      signal: entry.controller.signal,
      cause: () => entry.cause,
      expire: () => this.abort(entry, 'deadline'),
      release: () => {
        external?.removeEventListener('abort', onExternal);
        const s = this.entries.get(key);
        s?.delete(entry);
        if (s?.size === 0) this.entries.delete(key);
      },
    };
  }

  /** Aborts running attempts (all, or those `filter` selects) with cause `shutdown`. */
  abortAll(filter: (ref: LeaseRef) => boolean = () => true): number {
    let n = 0;
    for (const set of this.entries.values())
      for (const e of set)
        if (e.cause === undefined && filter(e.ref)) {
          this.abort(e, 'shutdown');
          n++;
        }
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.subscriber.off('message', this.onMessage);
    try {
      await this.subscriber.unsubscribe(this.channel);
    } catch (err) {
      this.logger.debug({ err }, 'unsubscribe failed on close');
    }
  }

  private abort(entry: Entry, cause: AbortCause): void {
    if (entry.cause !== undefined) return;
    entry.cause = cause;
    entry.controller.abort(cause);
  }

  private handleMessage(channel: string, message: string): void {
    if (channel !== this.channel) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      parsed = undefined;
    }
    const msg = CancelMessageSchema.safeParse(parsed);
    if (!msg.success) {
      // Nothing to fail: the message has no job. Say so loudly; the status re-check still works.
      this.logger.error({ channel, message: message.slice(0, 500), issues: msg.error.issues }, 'invalid cancel message');
      return;
    }
    const set = this.entries.get(leaseKey(msg.data.tenant, msg.data.runId, msg.data.attemptId));
    if (set === undefined) return;
    for (const e of set) {
      this.logger.info({ attemptId: e.ref.attemptId, runId: e.ref.runId, reason: msg.data.reason }, 'attempt cancelled by broadcast');
      this.abort(e, 'cancelled');
    }
  }

  /** Why: a cancel published while this subscriber was reconnecting is lost; the hash is not. */
  private async recheck(): Promise<void> {
    if (this.checking || this.closed || this.entries.size === 0) return;
    this.checking = true;
    try {
      const all = [...this.entries.values()].flatMap((s) => [...s]).filter((e) => e.cause === undefined);
      await Promise.all(
        all.map(async (e) => {
          const raw = await this.redis.hget(runKeys(this.ks, e.ref.tenant, e.ref.runId).attempts, e.ref.attemptId);
          if (raw === null) return;
          const rec = decodeAttempt(raw, e.ref.attemptId);
          if (rec.status === 'cancelled' || rec.status === 'superseded' || rec.epoch !== e.ref.epoch) {
            this.logger.info({ attemptId: e.ref.attemptId, runId: e.ref.runId, status: rec.status }, 'attempt cancelled (status re-check)');
            this.abort(e, 'cancelled');
          }
        }),
      );
    } catch (err) {
      this.logger.warn({ err }, 'attempt status re-check failed');
    } finally {
      this.checking = false;
    }
  }
}
