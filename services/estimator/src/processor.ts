/**
 * Handles one outcomes-stream entry (M5, M9): validates it (an invalid entry goes to the
 * dead-letter stream with the reason), applies it to its class in one idempotent Lua script,
 * then runs the drift detectors and the stage machine on the snapshot the script returned and
 * applies a transition with a compare-and-set. On an alarm the durable kill switch is set
 * first (fail-safe order: if this process dies right after, schedulers already stop).
 */
import {
  type Clock,
  controlSetKill,
  estimatorApplyOutcome,
  estimatorSetStage,
  type Logger,
  nextTransition,
  OutcomeSchema,
  type Outcome,
  zodIssues,
} from '@gambit/shared';
import { assertKeySafe, controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import type { Metrics } from '@gambit/shared/telemetry';
import type { TenantConfigs } from './tenant-config.js';

export type EntryResult = 'applied' | 'duplicate' | 'dead';

export interface ProcessorOptions {
  readonly estimatorId: string;
  readonly autoGlobal: { readonly classCount: number; readonly windowMs: number };
  readonly fallbackPrior: { readonly a: number; readonly b: number };
  readonly metrics?: Metrics;
}

export interface ProcessorCounters {
  applied: number;
  duplicates: number;
  dead: number;
  alarms: number;
  transitions: number;
}

export class OutcomeProcessor {
  readonly counters: ProcessorCounters = { applied: 0, duplicates: 0, dead: 0, alarms: 0, transitions: 0 };

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly tenants: TenantConfigs,
    private readonly opts: ProcessorOptions,
  ) {}

  /** `fields` is the flat [name, value, ...] list of a stream entry. */
  async process(entryId: string, fields: readonly string[]): Promise<EntryResult> {
    const parsed = this.parse(fields);
    if (!parsed.ok) {
      await this.deadLetter(entryId, fields, parsed.reason);
      return 'dead';
    }
    const o = parsed.outcome;
    const { cfg, lambdaUsdPerSec } = await this.tenants.get(o.tenant);
    const now = this.clock.nowMs();
    const snap = await estimatorApplyOutcome(this.redis, this.ks, {
      classId: o.edgeClass,
      outcomeId: o.outcomeId,
      kind: o.kind,
      wasteNanoUsd: Math.round(o.wasteUsd * 1e9),
      savedMs: Math.round(o.secondsSaved * 1000),
      fencingViolation: o.fencingViolation,
      windowCap: cfg.windowCap,
      nowMs: now,
      fallbackPrior: this.opts.fallbackPrior,
      fallbackStage: 'shadow',
      tenant: o.tenant,
      phDelta: cfg.pageHinkley.delta,
    });
    if (snap === undefined) {
      this.counters.duplicates++;
      return 'duplicate';
    }
    this.counters.applied++;
    this.opts.metrics?.outcomeApplied(o, lambdaUsdPerSec);
    if (snap.stage === 'killed') return 'applied';
    const t = nextTransition(
      {
        stage: snap.stage,
        posterior: { a: snap.a, b: snap.b },
        window: snap.window,
        stageN: snap.stageN,
        stageRealN: snap.stageRealN,
        stageSavedMs: snap.stageSavedMs,
        stageWasteNanoUsd: snap.stageWasteNanoUsd,
        stageFencing: snap.stageFencing,
        ph: snap.ph,
      },
      cfg,
      lambdaUsdPerSec,
    );
    if (t === null) return 'applied';
    const log = { classId: o.edgeClass, tenant: o.tenant, from: t.from, to: t.to, reason: t.reason };
    if (t.alarm) {
      // The kill's own timestamp: taken now, not when the outcome arrived (a batch may queue).
      const alarmAtMs = this.clock.nowMs();
      const untilMs = alarmAtMs + cfg.cooldownMs;
      const k = await controlSetKill(this.redis, this.ks, {
        scope: 'class',
        id: o.edgeClass,
        reason: t.reason,
        nowMs: alarmAtMs,
        untilMs,
        autoGlobal: this.opts.autoGlobal,
        source: 'estimator',
        owner: 'estimator',
      });
      const r = await estimatorSetStage(this.redis, this.ks, {
        classId: o.edgeClass,
        expected: '*',
        to: 'killed',
        reason: t.reason,
        nowMs: alarmAtMs,
        killedUntilMs: untilMs,
      });
      if (k.changed) this.counters.alarms++;
      if (r.applied) this.counters.transitions++;
      this.log.warn({ ...log, killVersion: k.version, autoGlobal: k.autoGlobal, applied: r.applied }, 'drift alarm: class killed');
      return 'applied';
    }
    const r = await estimatorSetStage(this.redis, this.ks, {
      classId: o.edgeClass,
      expected: t.from,
      expectedVersion: snap.stageVersion,
      to: t.to,
      reason: t.reason,
      nowMs: now,
    });
    if (r.applied) {
      this.counters.transitions++;
      this.log.info(log, 'stage transition');
    }
    return 'applied';
  }

  private parse(fields: readonly string[]): { ok: true; outcome: Outcome } | { ok: false; reason: string } {
    const i = fields.indexOf('outcome');
    const raw = i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
    if (raw === undefined) return { ok: false, reason: 'no `outcome` field' };
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { ok: false, reason: 'outcome: not JSON' };
    }
    const r = OutcomeSchema.safeParse(json);
    if (!r.success) return { ok: false, reason: zodIssues(r.error, 'outcome').map((x) => `${x.path}: ${x.message}`).join('; ') };
    try {
      assertKeySafe('outcome.edgeClass', r.data.edgeClass);
    } catch {
      return { ok: false, reason: 'outcome.edgeClass: must be 1-128 characters without braces or whitespace' };
    }
    return { ok: true, outcome: r.data };
  }

  private async deadLetter(entryId: string, fields: readonly string[], reason: string): Promise<void> {
    this.counters.dead++;
    this.log.error({ entryId, reason }, 'invalid outcome entry: dead-lettered');
    await this.redis.xadd(
      controlKeys(this.ks).outcomesDead,
      '*',
      'entryId',
      entryId,
      'reason',
      reason,
      'fields',
      JSON.stringify(fields),
      'estimator',
      this.opts.estimatorId,
      'atMs',
      String(this.clock.nowMs()),
    );
  }
}
