/**
 * Issue 10 item 4: per-tenant fair dispatch of operation jobs to the workers (docs/runtime.md,
 * Fair dispatch). Open-source BullMQ has no group limits, so jobs do not go straight to the
 * `ops`/`spec` queues: a launch puts its job on its tenant's ready list of the lane
 * (fairEnqueue-5.lua), and a pump moves jobs into the BullMQ queue only while the registered
 * workers have free slots (outstanding < slots + headroom), choosing tenants by deficit
 * round-robin with weights (fairClaim-9.lua). The BullMQ queue stays about as deep as the free
 * slots, so a tenant's flood waits in its own ready list instead of in front of everyone. A few
 * reserved slots (FairOptions.reservedSlots) are held back from tenants that already hold that
 * many, so a tenant arriving during another's flood starts at once.
 *
 * Who pumps: the scheduler after every enqueue and on a timer, and each worker after every job it
 * finishes (it frees the slot, then fills it). Any number of processes may pump at once: a claim
 * is atomic. A claimed job is in `claimed` until its BullMQ add is confirmed; a pump that dies in
 * between leaves it there, and the sweep (any scheduler) adds it again under the same job id (an
 * idempotent add; a duplicate that already ran is fenced by the worker's startAttempt). A job
 * stays `out`standing until a worker finishes it; the sweep drops outstanding entries whose
 * BullMQ job no longer exists or ended (a job BullMQ failed by itself, a worker that died).
 *
 * Issue 13 item 4, queue shards (QUEUE_SHARDS, keys.ts queueShardPrefixes): each shard is all of
 * the above under its own hash tag, with its own `ops`/`spec` BullMQ queues; a tenant's jobs go
 * to its shard (queueShardOf), so every script stays in one slot and a tenant's fairness is whole
 * within its shard. Workers register their slots in every shard and run one BullMQ Worker per
 * shard and lane (their process caps the jobs run at once: services/worker/src/main.ts).
 */
import type { JobsOptions, Queue } from 'bullmq';
import type { Logger } from '../logger.js';
import { fairKeys, type KeySpace, queuePrefix, queueShardOf, queueShardsKey } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const FAIR_SCRIPT_FILES = ['fairEnqueue-5.lua', 'fairClaim-9.lua', 'fairBeat-1.lua', 'fairRemove-4.lua', 'fairRelease-3.lua'] as const;

export function defineFairScripts(redis: RedisLike): void {
  defineScripts(redis, FAIR_SCRIPT_FILES);
}

export type FairLane = 'ops' | 'spec';

/** A worker's registration counts for this long after its last beat. */
export const FAIR_WORKER_TTL_MS = 5_000;
/** How often a worker beats (well inside the TTL). */
export const FAIR_BEAT_MS = 1_000;
/** Jobs claimed per script call. */
const CLAIM_BATCH = 64;

/** One job waiting for a slot: what the pump adds to BullMQ. */
export interface FairItem {
  readonly lane: FairLane;
  readonly tenant: string;
  readonly jobId: string;
  readonly name: string;
  readonly data: unknown;
  readonly opts: JobsOptions;
}

export interface FairQueues {
  readonly ops: Queue;
  readonly spec: Queue;
}

/** One queue shard: its hash tag (the BullMQ prefix of its queues) and its two queues. */
export interface FairShard extends FairQueues {
  readonly prefix: string;
}

export interface FairOptions {
  /** Jobs allowed outstanding beyond the registered slots (0: only as many as the slots). */
  readonly headroom?: number;
  /**
   * Slots of each lane held back for tenants that hold fewer than this many: a tenant holding
   * `reservedSlots` or more gets another job only while more than `reservedSlots` are free. A
   * tenant arriving during another's flood then starts at once instead of waiting for a slot to
   * free; the price is that many slots idle while only one tenant has work. 0: none.
   */
  readonly reservedSlots?: number;
}

/** A lane of one shard: the unit pumps coalesce on. */
type LaneKey = `${FairLane}:${number}`;

/**
 * Issue 13 item 1: how long the confirmation of claimed jobs added to BullMQ (their deletion from
 * `claimed`) may wait for this process's next claim of the lane to carry it before it is sent on
 * its own. Well under the recovery sweep's stale period (RECOVERY_STALE_MS, 5 s by default), after
 * which the sweep would add a claimed job again (harmless, the add is idempotent by job id and a
 * job that already ran is fenced by startAttempt, but a waste).
 */
export const CONFIRM_DEFER_MS = 1_000;

export class FairDispatcher {
  private readonly pumping = new Map<LaneKey, Promise<number>>();
  /** Claimed jobs added to BullMQ whose deletion from `claimed` waits for the lane's next claim (see `confirm`). */
  private readonly confirmed = new Map<LaneKey, string[]>();
  private confirmTimer: NodeJS.Timeout | undefined;
  private readonly again = new Set<LaneKey>();
  private readonly headroom: number;
  private readonly reserved: number;
  /** The queue shards (one: the queues of before, under `{P:q}`). */
  readonly shards: readonly FairShard[];

  /** `queues`: the one shard's queues (under queuePrefix(ks)), or every shard of QUEUE_SHARDS. */
  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    queues: FairQueues | readonly FairShard[],
    private readonly log: Logger,
    opts: FairOptions = {},
  ) {
    this.shards = 'ops' in queues ? [{ prefix: queuePrefix(ks), ops: queues.ops, spec: queues.spec }] : queues;
    if (this.shards.length === 0) throw new RangeError('FairDispatcher: at least one queue shard');
    defineFairScripts(redis);
    this.headroom = opts.headroom ?? 0;
    this.reserved = opts.reservedSlots ?? 0;
    if (!Number.isInteger(this.headroom) || this.headroom < 0) throw new RangeError(`FairDispatcher: headroom must be a non-negative integer, got ${opts.headroom}`);
    if (!Number.isInteger(this.reserved) || this.reserved < 0) throw new RangeError(`FairDispatcher: reservedSlots must be a non-negative integer, got ${opts.reservedSlots}`);
  }

  /**
   * Puts a job on its tenant's ready list (idempotent by job id). `order`: lower first within the
   * tenant (creation ms on `ops`; the BullMQ priority on `spec`, so higher EV goes first).
   * Returns false when the job was already ready, claimed or outstanding.
   */
  async enqueue(item: FairItem, order: number): Promise<boolean> {
    const k = this.keys(item.lane, this.shardOf(item.tenant));
    const added = await callScript<number>(this.redis, 'fairEnqueue-5.lua', [k.items, k.ready(item.tenant), k.ring, k.claimed, k.out], [
      item.jobId,
      JSON.stringify(item),
      order,
      item.tenant,
    ]);
    return added === 1;
  }

  /**
   * Issue 13 item 1: `enqueue` and the claim of a pump in one script call (fairClaim-9.lua in
   * enqueue mode; the same outcome as the two calls made back to back, with nothing between
   * them). Returns the jobs claimed (this one or others), which the caller hands to `dispatch`.
   */
  async enqueueAndClaim(item: FairItem, order: number): Promise<{ added: boolean; claimed: FairItem[] }> {
    const shard = this.shardOf(item.tenant);
    const k = this.keys(item.lane, shard);
    const reply = await this.claimCall(item.lane, shard, [
      item.lane,
      CLAIM_BATCH,
      k.readyPrefix,
      FAIR_WORKER_TTL_MS,
      this.headroom,
      this.reserved,
      'enqueue',
      item.jobId,
      JSON.stringify(item),
      order,
      item.tenant,
    ]);
    return { added: Number(reply[2]) === 1, claimed: reply.slice(3).map((raw) => JSON.parse(String(raw)) as FairItem) };
  }

  /**
   * Hands jobs claimed by `enqueueAndClaim` to BullMQ and confirms them; a full batch means more
   * may be ready, so the lane is pumped on. Returns jobs added.
   */
  async dispatch(lane: FairLane, claimed: readonly FairItem[]): Promise<number> {
    const first = claimed[0];
    if (first === undefined) return 0;
    // One claim is one shard's: its items' tenants all map to it.
    const shard = this.shardOf(first.tenant);
    await this.confirm(lane, shard, claimed);
    return claimed.length + (claimed.length < CLAIM_BATCH ? 0 : await this.pump(lane, shard));
  }

  /** The queue shard of a tenant's jobs. */
  shardOf(tenant: string): number {
    return queueShardOf(tenant, this.shards.length);
  }

  private keys(lane: FairLane, shard: number): ReturnType<typeof fairKeys> {
    return fairKeys(this.ks, lane, this.shardAt(shard).prefix);
  }

  private shardAt(shard: number): FairShard {
    const s = this.shards[shard];
    if (s === undefined) throw new RangeError(`FairDispatcher: no queue shard ${shard} (of ${this.shards.length})`);
    return s;
  }

  /**
   * fairClaim-9.lua with `args`, carrying the lane's confirmations waiting in this process
   * ('confirm' and their job ids, last); given back if the call fails.
   */
  private async claimCall(lane: FairLane, shard: number, args: Array<string | number>): Promise<Array<string | number>> {
    const k = this.keys(lane, shard);
    const key: LaneKey = `${lane}:${shard}`;
    const done = this.confirmed.get(key);
    if (done !== undefined) this.confirmed.delete(key);
    try {
      return await callScript<Array<string | number>>(
        this.redis,
        'fairClaim-9.lua',
        [k.ring, k.deficit, k.weights, k.items, k.claimed, k.out, k.workers, k.owner, k.inuse],
        done === undefined ? args : [...args, 'confirm', ...done],
      );
    } catch (err) {
      if (done !== undefined) this.deferConfirm(key, done);
      throw err;
    }
  }

  /**
   * Adds claimed jobs to BullMQ; once added they are confirmed (deleted from `claimed`) by this
   * process's next claim of the lane, or by `flushConfirmed` within CONFIRM_DEFER_MS (issue 13
   * item 1: the HDEL rides on a script call that is made anyway).
   */
  private async confirm(lane: FairLane, shard: number, items: readonly FairItem[]): Promise<void> {
    await Promise.all(items.map((it) => this.add(shard, it)));
    this.deferConfirm(`${lane}:${shard}`, items.map((it) => it.jobId));
  }

  private deferConfirm(key: LaneKey, jobIds: readonly string[]): void {
    const list = this.confirmed.get(key);
    if (list === undefined) this.confirmed.set(key, [...jobIds]);
    else list.push(...jobIds);
    if (this.confirmTimer === undefined) {
      this.confirmTimer = setTimeout(() => {
        this.confirmTimer = undefined;
        this.flushConfirmed().catch((err: unknown) => this.log.warn({ err: String(err) }, 'fair dispatch: confirmations failed (the sweep adds those jobs again)'));
      }, CONFIRM_DEFER_MS);
      this.confirmTimer.unref();
    }
  }

  /** Sends every confirmation still waiting for a claim (the timer; a process that stops). */
  async flushConfirmed(): Promise<void> {
    const all = [...this.confirmed];
    this.confirmed.clear();
    const r = await Promise.allSettled(
      all.map(([key, ids]) => {
        const [lane, shard] = key.split(':') as [FairLane, string];
        return this.redis.hdel(this.keys(lane, Number(shard)).claimed, ...ids);
      }),
    );
    r.forEach((x, i) => {
      const e = all[i];
      if (x.status === 'rejected' && e !== undefined) this.deferConfirm(e[0], e[1]);
    });
  }

  /**
   * Moves ready jobs of `lane` into BullMQ while slots are free: of one shard, or of every shard
   * when `shard` is not given. Calls that overlap in this process coalesce per shard: one more
   * pass runs after the current one. Returns jobs added.
   */
  async pump(lane: FairLane, shard?: number): Promise<number> {
    if (shard !== undefined) return this.pumpAfter(lane, shard);
    if (this.shards.length === 1) return this.pumpAfter(lane, 0);
    const added = await Promise.all(this.shards.map((_, i) => this.pumpAfter(lane, i)));
    return added.reduce((a, b) => a + b, 0);
  }

  /**
   * A worker finished the job (completed or failed for good): `release` and then `pump`, in one
   * script call when no pump of the lane is in flight in this process (issue 13 item 1). Returns
   * jobs added.
   */
  async releaseAndPump(lane: FairLane, jobId: string, shard = 0): Promise<number> {
    if (this.pumping.has(`${lane}:${shard}`)) {
      await this.release(lane, jobId, shard);
      return this.pump(lane, shard);
    }
    return this.pumpAfter(lane, shard, jobId);
  }

  /** `pump` of one shard; with `releaseJobId` (no pump in flight) its first claim releases that job first. */
  private pumpAfter(lane: FairLane, shard: number, releaseJobId?: string): Promise<number> {
    const key: LaneKey = `${lane}:${shard}`;
    const running = this.pumping.get(key);
    if (running !== undefined) {
      if (releaseJobId !== undefined) throw new Error('FairDispatcher.pumpAfter: a release while a pump of the lane is in flight needs its own call');
      this.again.add(key);
      return running;
    }
    const p = (async () => {
      let total = 0;
      let release = releaseJobId;
      try {
        do {
          this.again.delete(key);
          total += await this.drain(lane, shard, release);
          release = undefined;
        } while (this.again.has(key));
      } finally {
        this.pumping.delete(key);
      }
      return total;
    })();
    this.pumping.set(key, p);
    return p;
  }

  /** Pumps both lanes; errors are logged (a pump is retried by the next trigger and the timer). */
  pumpAll(): Promise<void> {
    return Promise.all((['ops', 'spec'] as const).map((l) => this.pump(l).catch((err: unknown) => this.log.warn({ lane: l, err: String(err) }, 'fair dispatch pump failed')))).then(
      () => undefined,
    );
  }

  private async drain(lane: FairLane, shard: number, releaseJobId?: string): Promise<number> {
    const k = this.keys(lane, shard);
    let total = 0;
    let release = releaseJobId;
    for (;;) {
      const reply = await this.claimCall(lane, shard, [lane, CLAIM_BATCH, k.readyPrefix, FAIR_WORKER_TTL_MS, this.headroom, this.reserved, ...(release === undefined ? [] : ['release', release])]);
      const items = reply.slice(release === undefined ? 2 : 3).map((raw) => JSON.parse(String(raw)) as FairItem);
      release = undefined;
      if (items.length === 0) return total;
      await this.confirm(lane, shard, items);
      total += items.length;
      if (items.length < CLAIM_BATCH) return total;
    }
  }

  private queue(shard: number, lane: FairLane): Queue {
    const s = this.shardAt(shard);
    return lane === 'ops' ? s.ops : s.spec;
  }

  private add(shard: number, it: FairItem): Promise<unknown> {
    return this.queue(shard, it.lane).add(it.name, it.data, { ...it.opts, jobId: it.jobId });
  }

  /** Removes a job still waiting on its tenant's ready list (a cancelled queued speculation). */
  async remove(lane: FairLane, tenant: string, jobId: string): Promise<boolean> {
    const k = this.keys(lane, this.shardOf(tenant));
    return (await callScript<number>(this.redis, 'fairRemove-4.lua', [k.items, k.ready(tenant), k.ring, k.deficit], [jobId, tenant])) === 1;
  }

  /**
   * Removes a job of `tenant` that is in its BullMQ queue and not yet taken by a worker, and
   * releases its slot. Returns whether it was removed.
   */
  async removeQueued(lane: FairLane, tenant: string, jobId: string): Promise<boolean> {
    const shard = this.shardOf(tenant);
    if ((await this.queue(shard, lane).remove(jobId)) !== 1) return false;
    await this.release(lane, jobId, shard);
    return true;
  }

  /** A worker finished the job (completed or failed for good) of shard `shard`: its slot is free. */
  async release(lane: FairLane, jobId: string, shard = 0): Promise<boolean> {
    const k = this.keys(lane, shard);
    return (await callScript<number>(this.redis, 'fairRelease-3.lua', [k.out, k.owner, k.inuse], [jobId])) === 1;
  }

  /**
   * A worker's slots per lane, refreshed every FAIR_BEAT_MS (stamped with Redis's clock), in
   * every shard: the worker serves them all.
   */
  async beat(workerId: string, slots: { ops: number; spec: number }): Promise<void> {
    await Promise.all(this.shards.map((_, i) => callScript<number>(this.redis, 'fairBeat-1.lua', [this.keys('ops', i).workers], [workerId, slots.ops, slots.spec])));
  }

  /** A worker that stops takes its slots away at once. */
  async leave(workerId: string): Promise<void> {
    await Promise.all(this.shards.map((_, i) => this.redis.hdel(this.keys('ops', i).workers, workerId)));
  }

  /** The operator's dispatch weight of a tenant (> 0; 1 when never set), in the tenant's shard. */
  async setWeight(tenant: string, weight: number): Promise<void> {
    if (!(weight > 0) || !Number.isFinite(weight)) throw new RangeError(`FairDispatcher.setWeight: weight must be a positive number, got ${weight}`);
    await this.redis.hset(this.keys('ops', this.shardOf(tenant)).weights, tenant, String(weight));
  }

  /**
   * Recovery (any scheduler, on its sweep): adds claimed jobs whose pump died before confirming
   * (claimed more than `staleMs` ago, Redis clock) and drops outstanding entries older than
   * `staleMs` whose BullMQ job ended or is gone. Returns { readded, dropped }.
   */
  async sweep(staleMs: number): Promise<{ readded: number; dropped: number }> {
    // What this process added already is confirmed first, not taken for a pump that died.
    await this.flushConfirmed();
    const [sec, usec] = await this.redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    let readded = 0;
    let dropped = 0;
    for (let shard = 0; shard < this.shards.length; shard++) {
      for (const lane of ['ops', 'spec'] as const) {
        const k = this.keys(lane, shard);
        const claimed = await this.redis.hgetall(k.claimed);
        for (const [jobId, raw] of Object.entries(claimed)) {
          const c = JSON.parse(raw) as { at: number; item: FairItem };
          if (now - c.at < staleMs) continue;
          await this.add(shard, c.item);
          await this.redis.hdel(k.claimed, jobId);
          readded++;
        }
        const old = await this.redis.zrangebyscore(k.out, '-inf', now - staleMs);
        const queue = this.queue(shard, lane);
        for (const jobId of old) {
          if ((await this.redis.hexists(k.claimed, jobId)) === 1) continue;
          const state = await queue.getJobState(jobId);
          if ((state === 'unknown' || state === 'completed' || state === 'failed') && (await this.release(lane, jobId, shard))) dropped++;
        }
      }
    }
    if (readded > 0 || dropped > 0) this.log.info({ readded, dropped }, 'fair dispatch swept');
    return { readded, dropped };
  }
}

/**
 * Issue 13 item 4: every scheduler and worker of a deployment must use the same QUEUE_SHARDS (a
 * tenant's jobs are looked for in the shard the count maps it to). The first process to start
 * records the count (`{P:q}:shards`, SET NX); a process started with another count refuses to
 * start with an error naming both and the key. Changing the count is a migration (docs/operations.md).
 */
export async function checkQueueShards(redis: RedisLike, ks: KeySpace, shards: number): Promise<void> {
  const key = queueShardsKey(ks);
  await redis.set(key, String(shards), 'NX');
  const recorded = await redis.get(key);
  if (recorded !== String(shards)) {
    throw new Error(
      `QUEUE_SHARDS=${shards} but the queues of prefix "${ks.prefix}" are set up with QUEUE_SHARDS=${recorded} (key ${key}): every scheduler and worker of a deployment must use the same value; to change it, drain and stop them all, then delete the key (docs/operations.md, Queue shards)`,
    );
  }
}
