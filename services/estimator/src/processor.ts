/**
 * Handles outcomes-stream entries in batches (M5, M9; issue 13 item 2): validates each (an
 * invalid entry goes to the dead-letter stream with the reason), applies a batch's outcomes of
 * one class in one idempotent Lua script, then, per outcome, runs the drift detectors and the
 * stage machine on the snapshot the script returned for it and applies a transition with a
 * compare-and-set. On an alarm the durable kill switch is set
 * first (fail-safe order: if this process dies right after, schedulers already stop).
 */
import {
  type AppliedSnapshot,
  type BatchOutcome,
  type Clock,
  controlSetKill,
  estimatorApplyClasses,
  estimatorSetStage,
  isEvidence,
  type Logger,
  nextTransition,
  OutcomeSchema,
  type Outcome,
  type Transition,
  zodIssues,
} from '@gambit/shared';
import { assertKeySafe, controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import type { Metrics } from '@gambit/shared/telemetry';
import type { DedupeHorizon } from './dedupe-horizon.js';
import { outcomeFast } from './outcome-fast.js';
import type { TenantCalibration, TenantConfigs } from './tenant-config.js';


/**
 * The kind the estimator's script applies (M5, M9): an outcome that is no evidence (`evidence:
 * false`, a speculation on an upstream output the stream had settled) is applied as `cancelled`:
 * its seconds saved, waste and fencing count in the stage's value counters (the canary's net
 * value), and neither the posterior nor the drift window nor Page-Hinkley sees it.
 */
export function scriptKind(o: Pick<Outcome, 'kind' | 'evidence'>): BatchOutcome['kind'] {
  return isEvidence(o) ? o.kind : 'cancelled';
}

export interface ProcessorOptions {
  readonly estimatorId: string;
  /** What the outcome-id dedupe may forget (dedupe-horizon.ts); absent: nothing is forgotten. */
  readonly dedupe?: Pick<DedupeHorizon, 'forgetBeforeMs'>;
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

/** Class ids whose key-safety check is remembered (parse). */
const SAFE_CLASSES_MAX = 10_000;

export class OutcomeProcessor {
  readonly counters: ProcessorCounters = { applied: 0, duplicates: 0, dead: 0, alarms: 0, transitions: 0 };
  private readonly safeClasses = new Set<string>();

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly tenants: TenantConfigs,
    private readonly opts: ProcessorOptions,
  ) {}

  /**
   * Handles a batch of stream entries (issue 13 item 2) and returns the ids that may be acked:
   * invalid entries go to the dead-letter stream; valid outcomes are grouped by class and each
   * class's outcomes are applied in stream order by one script (all its keys in the class's hash
   * tag); then, for every applied outcome in order, the detectors and the stage machine run on the
   * snapshot taken right after it, exactly as when outcomes were applied one by one. An entry
   * whose step failed is left out (not acked: redelivered, and the dedupe by outcome id makes
   * the re-application a no-op). A null `fields` (entry deleted while pending) is acked.
   */
  async processBatch(entries: ReadonlyArray<readonly [id: string, fields: readonly string[] | null]>): Promise<string[]> {
    const done: string[] = [];
    const byClass = new Map<string, Array<{ id: string; o: Outcome }>>();
    const dead: Array<Promise<void>> = [];
    for (const [id, fields] of entries) {
      if (fields === null) {
        done.push(id);
        continue;
      }
      const parsed = this.parse(fields);
      if (!parsed.ok) {
        dead.push(
          this.deadLetter(id, fields, parsed.reason).then(
            () => void done.push(id),
            (err: unknown) => this.log.error({ entryId: id, err: String(err) }, 'dead-lettering failed; left pending'),
          ),
        );
        continue;
      }
      const list = byClass.get(parsed.outcome.edgeClass);
      if (list === undefined) byClass.set(parsed.outcome.edgeClass, [{ id, o: parsed.outcome }]);
      else list.push({ id, o: parsed.outcome });
    }
    await Promise.all([...dead, this.applyClasses(byClass, done)]);
    return done;
  }

  /**
   * A batch's outcomes by class: one script call for every class on a single server, one per
   * class in a Cluster (estimatorApplyClasses), then per class the per-outcome detectors and
   * transitions. A class whose update failed is left pending (logged); the others go on.
   */
  private async applyClasses(byClass: ReadonlyMap<string, ReadonlyArray<{ id: string; o: Outcome }>>, done: string[]): Promise<void> {
    if (byClass.size === 0) return;
    const classes = [...byClass];
    const now = this.clock.nowMs();
    const forgetBeforeMs = this.opts.dedupe?.forgetBeforeMs(now);
    const cals = new Map<string, TenantCalibration>();
    let results: Awaited<ReturnType<typeof estimatorApplyClasses>>;
    try {
      const tenants = new Set<string>();
      for (const [, items] of classes) for (const { o } of items) tenants.add(o.tenant);
      await Promise.all([...tenants].map(async (t) => void cals.set(t, await this.tenants.get(t))));
      results = await estimatorApplyClasses(this.redis, this.ks, {
        classes: classes.map(([classId, items]) => ({
          classId,
          outcomes: items.map(({ o }) => {
            const { cfg } = cals.get(o.tenant) as TenantCalibration;
            return {
              outcomeId: o.outcomeId,
              kind: scriptKind(o),
              wasteNanoUsd: Math.round(o.wasteUsd * 1e9),
              savedMs: Math.round(o.secondsSaved * 1000),
              fencingViolation: o.fencingViolation,
              windowCap: cfg.windowCap,
              tenant: o.tenant,
              phDelta: cfg.pageHinkley.delta,
            };
          }),
        })),
        nowMs: now,
        fallbackPrior: this.opts.fallbackPrior,
        fallbackStage: 'shadow',
        ...(forgetBeforeMs === undefined ? {} : { forgetBeforeMs }),
      });
    } catch (err) {
      // Not acked: redelivered through XAUTOCLAIM after claimIdleMs (here or elsewhere).
      this.log.error({ classes: classes.length, err: String(err) }, 'outcome handling failed; left pending');
      return;
    }
    await Promise.all(
      classes.map(async ([classId, items], c) => {
        const snaps = results[c];
        if (snaps === undefined || snaps instanceof Error) {
          this.log.error({ classId, entries: items.length, err: String(snaps) }, 'outcome handling failed; left pending');
          return;
        }
        for (let i = 0; i < items.length; i++) {
          const { id, o } = items[i] as { id: string; o: Outcome };
          try {
            const snap = snaps[i];
            const cal = cals.get(o.tenant) as TenantCalibration;
            // Synchronous unless a transition is due (rare): no promise per outcome.
            const t = this.evaluate(o, snap, cal);
            if (t !== null && snap !== undefined) await this.transition(o, t, snap, cal, now);
            done.push(id);
          } catch (err) {
            this.log.error({ entryId: id, err: String(err) }, 'outcome handling failed; left pending');
          }
        }
      }),
    );
  }

  /** Counts one applied (or duplicate) outcome and runs the detectors and the stage machine on its snapshot: the transition due, if any. */
  private evaluate(o: Outcome, snap: AppliedSnapshot | undefined, cal: TenantCalibration): Transition | null {
    const { cfg, lambdaUsdPerSec } = cal;
    if (snap === undefined) {
      this.counters.duplicates++;
      return null;
    }
    this.counters.applied++;
    this.opts.metrics?.outcomeApplied(o, lambdaUsdPerSec);
    if (snap.stage === 'killed') return null;
    return nextTransition(
      {
        stage: snap.stage,
        posterior: { a: snap.a, b: snap.b },
        window: snap.window,
        windowHits: snap.windowHits,
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
  }

  /** Applies a transition `evaluate` found (on an alarm: the kill switch first, then the stage). */
  private async transition(o: Outcome, t: Transition, snap: AppliedSnapshot, cal: TenantCalibration, now: number): Promise<void> {
    const { cfg } = cal;
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
      return;
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
    // The fast check accepts only what OutcomeSchema accepts; anything else goes through the schema.
    let outcome = outcomeFast(json);
    if (outcome === undefined) {
      const r = OutcomeSchema.safeParse(json);
      if (!r.success) return { ok: false, reason: zodIssues(r.error, 'outcome').map((x) => `${x.path}: ${x.message}`).join('; ') };
      outcome = r.data;
    }
    if (!this.safeClasses.has(outcome.edgeClass)) {
      try {
        assertKeySafe('outcome.edgeClass', outcome.edgeClass);
      } catch {
        return { ok: false, reason: 'outcome.edgeClass: must be 1-128 characters without braces or whitespace' };
      }
      // Class ids already checked (bounded: emptied when full).
      if (this.safeClasses.size >= SAFE_CLASSES_MAX) this.safeClasses.clear();
      this.safeClasses.add(outcome.edgeClass);
    }
    return { ok: true, outcome };
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
