/**
 * The control-plane client schedulers use (M9.5, ARCHITECTURE.md estimator): a local copy of the
 * kill-switch state, kept current by the alarm pub/sub message (fast path) AND a periodic version
 * check (a scheduler that missed messages while disconnected catches up), plus estimator
 * heartbeat freshness (no fresh heartbeat → speculation paused; authoritative work is never
 * affected). Also: class creation and state, outcome publishing, operator kill/revive.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Clock } from '../clock.js';
import type { BetaParams, DependencyType } from '../core/types.js';
import { NotFoundError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { OutcomeSchema, type Outcome } from '../schemas/records.js';
import {
  controlClearKill,
  controlEnsureClass,
  controlSetKill,
  defineEstimatorScripts,
  estimatorSetStage,
  readClassState,
} from '../redis/estimator-scripts.js';
import { assertKeySafe, controlKeys, type KeySpace, outcomeShardOf, outcomeStreams } from '../redis/keys.js';
import { parseClassHash, type ClassState } from './class-state.js';
import { HeartbeatTracker } from './heartbeat.js';
import {
  AlarmMessageSchema,
  applyAlarm,
  type BlockedVerdict,
  blockedBy,
  EMPTY_KILL_STATE,
  type KillEvent,
  type KillState,
  newKills,
  parseKillHash,
} from './kill-state.js';

export interface ControlPlaneOptions {
  /** Period of the kill-switch version check and heartbeat read. Default 250 ms. */
  readonly pollMs?: number;
  /** No heartbeat advance within this window → speculation paused. Default 3000 ms. */
  readonly heartbeatStaleMs?: number;
  /** How long `classState` answers from its cache. Default 500 ms. */
  readonly classStateCacheMs?: number;
  /** Outcome stream shards (GAMBIT_OUTCOME_SHARDS, keys.ts outcomeStreams). Default 1. */
  readonly outcomeShards?: number;
}

export interface KillOptions {
  /** Who sets the kill (an operator key's name); recorded with the entry. */
  readonly owner?: string;
  /** When the kill lapses (ms since the epoch); absent = until revived. */
  readonly untilMs?: number;
  /** Or: the kill lapses this many ms after it is set. */
  readonly expiresInMs?: number;
}

function killArgs(o: KillOptions, nowMs: number): { owner?: string; untilMs?: number } {
  const until = o.untilMs ?? (o.expiresInMs === undefined ? undefined : nowMs + o.expiresInMs);
  return { ...(o.owner === undefined ? {} : { owner: o.owner }), ...(until === undefined ? {} : { untilMs: until }) };
}

export type RevokeTarget = { scope: 'global' } | { scope: 'tenant'; tenant: string } | { scope: 'class'; classId: string };

export class ControlPlane {
  private readonly cmd: Redis | Cluster;
  private readonly sub: Redis | Cluster;
  private readonly ownsCmd: boolean;
  private readonly keys: ReturnType<typeof controlKeys>;
  private readonly outcomeStreams: readonly string[];
  private readonly pollMs: number;
  private readonly cacheMs: number;
  private readonly hb: HeartbeatTracker;
  private state: KillState = EMPTY_KILL_STATE;
  private hbFresh = false;
  private readonly killListeners = new Set<(e: KillEvent) => void>();
  private readonly changeListeners = new Set<() => void>();
  private readonly cache = new Map<string, { atMs: number; value: ClassState | undefined }>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed: Promise<void> | undefined;
  private readonly readyP: Promise<void>;
  private lastPollErrorLogMs = 0;
  /** Consecutive polls that read a version below the local one (the hash was reset). */
  private lowerReads = 0;

  constructor(
    redis: Redis | Cluster | RedisOptions | string,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: ControlPlaneOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 250;
    this.cacheMs = opts.classStateCacheMs ?? 500;
    this.hb = new HeartbeatTracker(opts.heartbeatStaleMs ?? 3000);
    this.keys = controlKeys(ks);
    this.outcomeStreams = outcomeStreams(ks, opts.outcomeShards ?? 1);
    // A Redis Cluster client works as is: every control key shares the {ctl} hash tag.
    if (redis instanceof Redis || redis instanceof Cluster) {
      this.cmd = redis;
      this.ownsCmd = false;
    } else {
      this.cmd = typeof redis === 'string' ? new Redis(redis, { maxRetriesPerRequest: 1 }) : new Redis({ maxRetriesPerRequest: 1, ...redis });
      this.ownsCmd = true;
      // Connection errors surface as failed polls (logged, throttled); ioredis reconnects.
      this.cmd.on('error', (err) => this.log.debug({ err: String(err) }, 'control-plane connection error'));
    }
    defineEstimatorScripts(this.cmd);
    // A subscriber connection cannot run other commands: always a dedicated one, always ours.
    this.sub = this.cmd instanceof Cluster ? this.cmd.duplicate() : this.cmd.duplicate();
    this.sub.on('error', (err) => this.log.debug({ err: String(err) }, 'control-plane subscriber error'));
    this.sub.on('message', (_ch: string, msg: string) => this.onMessage(msg));
    // ioredis resubscribes after a reconnect; re-read the hash too, messages may have been missed.
    this.sub.on('ready', () => void this.poll());
    this.readyP = this.start();
    this.readyP.catch(() => undefined);
  }

  /** Resolves after the first read of the kill state and the subscription are in place. */
  ready(): Promise<void> {
    return this.readyP;
  }

  /**
   * The version check starts at once and never stops; the subscription is retried until Redis
   * answers (a scheduler may start while Redis is briefly away: it stays fail-safe meanwhile,
   * blocked by the heartbeat check, and never crashes on it).
   */
  private async start(): Promise<void> {
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref?.();
    for (;;) {
      if (this.closed !== undefined) return;
      try {
        await this.sub.subscribe(this.keys.alarmsChannel);
        break;
      } catch (err) {
        this.log.warn({ err: String(err) }, 'alarm subscription failed; retrying');
        await new Promise((r) => setTimeout(r, this.pollMs));
      }
    }
    await this.poll();
  }

  private onMessage(raw: string): void {
    let parsed: ReturnType<typeof AlarmMessageSchema.safeParse>;
    try {
      parsed = AlarmMessageSchema.safeParse(JSON.parse(raw));
    } catch {
      this.log.error({ raw }, 'invalid alarm message (not JSON); re-reading the kill hash');
      void this.poll();
      return;
    }
    if (!parsed.success) {
      this.log.error({ raw, issues: parsed.error.issues }, 'invalid alarm message; re-reading the kill hash');
      void this.poll();
      return;
    }
    const m = parsed.data;
    if (m.version <= this.state.version) return;
    const gap = m.version > this.state.version + 1;
    // Apply at once (speed), then re-read (the hash is the truth: skipped versions, and the
    // entry's owner and expiry, which the message does not carry).
    this.setState(applyAlarm(this.state, m));
    void this.fetchKillState(false, true).catch((err: unknown) => this.log.warn({ err: String(err), gap }, 'kill hash re-read failed'));
  }

  private setState(next: KillState): void {
    const prev = this.state;
    this.state = next;
    for (const e of newKills(prev, next)) {
      this.log.warn({ scope: e.scope, id: e.id, reason: e.reason, version: next.version }, 'kill switch');
      for (const l of this.killListeners) {
        try {
          l(e);
        } catch (err) {
          this.log.error({ err: String(err) }, 'onKill listener threw');
        }
      }
    }
    this.emitChange();
  }

  private emitChange(): void {
    for (const l of this.changeListeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err: String(err) }, 'onStateChange listener threw');
      }
    }
  }

  /**
   * Reads the kill hash. `allowEqual` also replaces a state of the same version: the alarm
   * message applied first carries no owner or expiry, the hash does.
   */
  private async fetchKillState(allowLower = false, allowEqual = false): Promise<void> {
    const h = await this.cmd.hgetall(this.keys.kill);
    const next = parseKillHash(h);
    if (next.version > this.state.version || (allowEqual && next.version === this.state.version) || (allowLower && next.version < this.state.version)) this.setState(next);
  }

  /** The periodic check: kill-hash version and heartbeats in one round trip. */
  private async poll(): Promise<void> {
    if (this.polling || this.closed !== undefined) return;
    this.polling = true;
    try {
      const res = await this.cmd.multi().hget(this.keys.kill, 'version').hgetall(this.keys.heartbeat).exec();
      const version = Number((res?.[0]?.[1] as string | null) ?? 0);
      this.hb.observe((res?.[1]?.[1] as Record<string, string> | null) ?? {}, this.clock.nowMs());
      if (version > this.state.version) await this.fetchKillState();
      // A lower version means the hash was deleted or reset. One such read can be a read that
      // raced a kill we already applied from pub/sub; two in a row cannot, so only then follow it.
      this.lowerReads = version < this.state.version ? this.lowerReads + 1 : 0;
      if (this.lowerReads >= 2) {
        this.log.warn({ local: this.state.version, remote: version }, 'kill hash version went back: following it');
        await this.fetchKillState(true);
        this.lowerReads = 0;
      }
    } catch (err) {
      const now = this.clock.nowMs();
      if (now - this.lastPollErrorLogMs > 5000) {
        this.lastPollErrorLogMs = now;
        this.log.warn({ err: String(err) }, 'control-plane poll failed');
      }
    } finally {
      this.polling = false;
    }
    const fresh = this.hb.fresh(this.clock.nowMs());
    if (fresh !== this.hbFresh) {
      this.hbFresh = fresh;
      this.log.info({ fresh }, fresh ? 'estimator heartbeat fresh' : 'estimator heartbeat stale: speculation paused');
      this.emitChange();
    }
  }

  /** Synchronous verdict from local state (M9.5). Never consulted for authoritative work. */
  speculationBlocked(tenant: string, classId: string): BlockedVerdict {
    const now = this.clock.nowMs();
    return blockedBy(this.state, tenant, classId, this.hb.fresh(now), now);
  }

  /** The local copy of the kill-switch state. */
  killState(): KillState {
    return this.state;
  }

  heartbeatFresh(): boolean {
    return this.hb.fresh(this.clock.nowMs());
  }

  /** Called once per new kill (class, tenant or global) as soon as it is seen. Returns an unsubscribe. */
  onKill(listener: (e: KillEvent) => void): () => void {
    this.killListeners.add(listener);
    return () => this.killListeners.delete(listener);
  }

  /** Called after any change of the local state (kill state or heartbeat freshness). */
  onStateChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Creates the class's posterior hash with its prior if absent (HSETNX-style), and registers it. */
  async ensureClass(
    classId: string,
    opts: { depType: DependencyType | string; k?: number; prior: BetaParams; initialStage?: 'shadow' | 'canary' | 'online'; tenant?: string },
  ): Promise<'created' | 'existed' | 'completed'> {
    assertKeySafe('classId', classId);
    const r = await controlEnsureClass(this.cmd, this.ks, {
      classId,
      prior: opts.prior,
      depType: opts.depType,
      ...(opts.k === undefined ? {} : { k: opts.k }),
      initialStage: opts.initialStage ?? 'shadow',
      nowMs: this.clock.nowMs(),
      tenant: opts.tenant ?? '',
    });
    await this.cmd.sadd(this.keys.classes, classId);
    this.cache.delete(classId);
    return r === 1 ? 'created' : r === 2 ? 'completed' : 'existed';
  }

  /** The class's stage and posterior, cached for `classStateCacheMs`; undefined if unknown. */
  async classState(classId: string, opts: { fresh?: boolean } = {}): Promise<ClassState | undefined> {
    const now = this.clock.nowMs();
    const hit = this.cache.get(classId);
    if (opts.fresh !== true && hit !== undefined && now - hit.atMs < this.cacheMs) return hit.value;
    // The posterior and the recent hit sequence (drift suspicion, calibration/suspect.ts) in one
    // command (a script; both keys share the class's hash tag).
    const r = await readClassState(this.cmd, this.ks, classId);
    const value = parseClassHash(r.posterior, r.windowBits);
    this.cache.set(classId, { atMs: now, value });
    return value;
  }

  /** Validates and appends an outcome to the outcomes stream; returns the stream entry id. */
  async publishOutcome(outcome: Outcome): Promise<string> {
    const r = OutcomeSchema.safeParse(outcome);
    if (!r.success) {
      throw new ValidationError(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
    }
    const stream = this.outcomeStreams[outcomeShardOf(r.data.edgeClass, this.outcomeStreams.length)] as string;
    const id = await this.cmd.xadd(stream, '*', 'outcome', JSON.stringify(r.data));
    return id ?? '';
  }

  /**
   * Operator kill of everything (M9.5). `opts.untilMs` makes it lapse at that time; without it the
   * kill holds until revived. Answers the kill-switch version.
   */
  async killGlobal(reason: string, opts: KillOptions = {}): Promise<number> {
    const now = this.clock.nowMs();
    const r = await controlSetKill(this.cmd, this.ks, { scope: 'global', id: '', reason, nowMs: now, source: 'operator', ...killArgs(opts, now) });
    await this.fetchKillState(false, true);
    return r.version;
  }

  async killTenant(tenant: string, reason: string, opts: KillOptions = {}): Promise<number> {
    assertKeySafe('tenant', tenant);
    const now = this.clock.nowMs();
    const r = await controlSetKill(this.cmd, this.ks, { scope: 'tenant', id: tenant, reason, nowMs: now, source: 'operator', ...killArgs(opts, now) });
    await this.fetchKillState(false, true);
    return r.version;
  }

  /**
   * Operator kill of one class (M9.5): speculation of the class stops cluster-wide. The class's
   * stage and posterior are left as they are (an operator kill is not evidence against the
   * predictions, so learning is never reset by it), and it holds until revived unless
   * `opts.untilMs` is given. A class that does not exist is refused (NotFoundError naming it):
   * a mistyped id must not be accepted and do nothing.
   */
  async killClass(classId: string, reason: string, opts: KillOptions = {}): Promise<number> {
    assertKeySafe('classId', classId);
    if ((await this.classState(classId, { fresh: true })) === undefined) throw new NotFoundError(`class "${classId}" does not exist`);
    const now = this.clock.nowMs();
    const r = await controlSetKill(this.cmd, this.ks, { scope: 'class', id: classId, reason, nowMs: now, source: 'operator', ...killArgs(opts, now) });
    await this.fetchKillState(false, true);
    return r.version;
  }

  /**
   * Operator revive: clears the kill entry. An operator kill left the class's stage and
   * posterior alone, so they are untouched now too. A class the drift detector killed (stage
   * `killed`) re-enters shadow from its prior, as its cooldown would (M9: a drift kill restarts
   * learning), before its entry is cleared, so no scheduler sees it unkilled in its old stage.
   */
  async revive(target: RevokeTarget, reason = 'operator revive'): Promise<number> {
    const now = this.clock.nowMs();
    let id = '';
    if (target.scope === 'tenant') id = target.tenant;
    if (target.scope === 'class') {
      id = target.classId;
      const st = await this.classState(id, { fresh: true });
      if (st?.stage === 'killed') await estimatorSetStage(this.cmd, this.ks, { classId: id, expected: 'killed', to: 'shadow', reason, nowMs: now, reset: true });
      this.cache.delete(id);
    }
    const r = await controlClearKill(this.cmd, this.ks, { scope: target.scope, id, reason, nowMs: now });
    await this.fetchKillState(false, true);
    return r.version;
  }

  /** Idempotent: unsubscribes, stops the timer, quits the connections this instance created. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      this.killListeners.clear();
      this.changeListeners.clear();
      await this.readyP.catch(() => undefined);
      await this.sub.quit().catch(() => this.sub.disconnect());
      if (this.ownsCmd) await this.cmd.quit().catch(() => this.cmd.disconnect());
    })();
    return this.closed;
  }
}
