/**
 * Typed wrappers of the estimator's and the control plane's Lua scripts (M5, M9): applying an
 * outcome to a class, moving a class between stages, creating a class, and setting or clearing
 * kill-switch entries. Every state change of calibration goes through one of these scripts, so
 * several estimators and schedulers can act at once.
 */
import { classKeys, controlKeys, type KeySpace } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const ESTIMATOR_SCRIPTS = [
  'estimatorApplyOutcomes-4.lua',
  'estimatorSetStage-3.lua',
  'controlEnsureClass-1.lua',
  'controlSetKill-1.lua',
  'controlClearKill-1.lua',
] as const;

export function defineEstimatorScripts(redis: RedisLike): void {
  defineScripts(redis, ESTIMATOR_SCRIPTS);
}

export type KillScope = 'global' | 'tenant' | 'class';
export type LiveStageName = 'shadow' | 'canary' | 'online' | 'killed';

export interface ApplyOutcomeArgs {
  readonly classId: string;
  readonly outcomeId: string;
  readonly kind: 'hit' | 'miss' | 'cancelled' | 'shadow_hit' | 'shadow_miss';
  readonly wasteNanoUsd: number;
  readonly savedMs: number;
  readonly fencingViolation: boolean;
  readonly windowCap: number;
  readonly nowMs: number;
  readonly fallbackPrior: { readonly a: number; readonly b: number };
  readonly fallbackStage: LiveStageName;
  readonly tenant: string;
  /** Page-Hinkley δ of the class's tenant. */
  readonly phDelta: number;
  /** Outcome ids applied before this (ms) are forgotten; absent: none (ApplyOutcomesArgs). */
  readonly forgetBeforeMs?: number;
}

export interface AppliedSnapshot {
  readonly stage: LiveStageName;
  readonly stageVersion: number;
  readonly a: number;
  readonly b: number;
  readonly stageN: number;
  readonly stageRealN: number;
  readonly stageSavedMs: number;
  readonly stageWasteNanoUsd: number;
  readonly stageFencing: number;
  readonly window: string;
  /**
   * `window` is outcomes [start, end) of the sequence whose prefix hit counts are `cum` (the
   * class's window before the batch followed by the batch's outcomes): the detector counts from
   * it instead of recounting each window (ClassSnapshot.windowHits).
   */
  readonly windowHits: { readonly cum: readonly number[]; readonly start: number; readonly end: number };
  readonly killedUntilMs: number;
  readonly tenant: string;
  readonly ph: { readonly n: number; readonly mean: number; readonly cum: number; readonly max: number };
}

/** One outcome of a batch (`estimatorApplyOutcomes`): the per-outcome part of `ApplyOutcomeArgs`. */
export interface BatchOutcome {
  readonly outcomeId: string;
  readonly kind: ApplyOutcomeArgs['kind'];
  readonly wasteNanoUsd: number;
  readonly savedMs: number;
  readonly fencingViolation: boolean;
  readonly windowCap: number;
  readonly tenant: string;
  readonly phDelta: number;
}

export interface ApplyOutcomesArgs {
  readonly classId: string;
  /** In stream order: applied in this order, each snapshot taken right after its outcome. */
  readonly outcomes: readonly BatchOutcome[];
  readonly nowMs: number;
  readonly fallbackPrior: { readonly a: number; readonly b: number };
  readonly fallbackStage: LiveStageName;
  /**
   * Outcome ids applied before this (ms) are forgotten by the class's dedupe set; absent: none.
   * The estimator passes its dedupe horizon (services/estimator/src/dedupe-horizon.ts: the
   * window before the outcome streams' delivery cut), so that every id that may still come back
   * is remembered and the set stays bounded by the window, not by throughput.
   */
  readonly forgetBeforeMs?: number;
}

const BEFORE = 15;
const PER_OUTCOME = 3;

/**
 * Applies a batch of outcomes of one class in one script (issue 13 item 2), in order. Returns,
 * per outcome, the class snapshot right after it (what `estimatorApplyOutcome` returned for it
 * alone), or `undefined` when its id was already counted, earlier or in the same batch. The
 * script returns the class state before the batch and each outcome's posterior; the counters,
 * the Page-Hinkley state (the script's steps, in the same double arithmetic) and the window of
 * each snapshot are rebuilt here from the outcomes sent.
 */
export async function estimatorApplyOutcomes(redis: RedisLike, ks: KeySpace, x: ApplyOutcomesArgs): Promise<Array<AppliedSnapshot | undefined>> {
  if (x.outcomes.length === 0) return [];
  const k = classKeys(ks, x.classId);
  if (x.forgetBeforeMs !== undefined && !Number.isFinite(x.forgetBeforeMs)) throw new RangeError(`forgetBeforeMs must be finite, got ${x.forgetBeforeMs}`);
  const args: Array<string | number> = [x.nowMs, x.fallbackPrior.a, x.fallbackPrior.b, x.fallbackStage, x.forgetBeforeMs === undefined ? '' : Math.floor(x.forgetBeforeMs)];
  const sent = x.outcomes;
  for (const o of sent) args.push(o.outcomeId, o.kind, Math.round(o.wasteNanoUsd), Math.round(o.savedMs), o.fencingViolation ? 1 : 0, o.windowCap, o.tenant, o.phDelta);
  const r = await callScript<Array<string | number>>(redis, 'estimatorApplyOutcomes-4.lua', [k.posterior, k.seen, k.window, k.windowBits], args);
  const out: Array<AppliedSnapshot | undefined> = new Array(sent.length).fill(undefined);
  if (Number(r[0]) === 0) return out;
  const num = (i: number) => Number(r[i] ?? 0);
  const stage = String(r[1]) as LiveStageName;
  const stageVersion = num(2);
  const killedUntilMs = num(3);
  const tenant = String(r[4] ?? '');
  const before = String(r[5] ?? '');
  let stageN = num(6);
  let stageRealN = num(7);
  let stageSavedMs = num(8);
  let stageWasteNanoUsd = num(9);
  let stageFencing = num(10);
  let phN = num(11);
  let phMean = num(12);
  let phCum = num(13);
  let phMax = num(14);
  const hitOf = (o: BatchOutcome) => (o.kind === 'hit' || o.kind === 'shadow_hit' ? 1 : o.kind === 'miss' || o.kind === 'shadow_miss' ? 0 : -1);
  const applied = sent.map((_, i) => num(BEFORE + i * PER_OUTCOME) === 1);
  // The window before the batch followed by the batch's applied hits and misses: every snapshot's
  // window is a suffix of a prefix of it (RPUSH x + LTRIM -windowCap -1 keeps a suffix).
  let pushed = '';
  for (const [i, o] of sent.entries()) if (applied[i] && hitOf(o) !== -1) pushed += hitOf(o) === 1 ? '1' : '0';
  const full = before + pushed;
  // Prefix hit counts as a plain array (prefixHits' Int32Array would allocate an ArrayBuffer
  // backing store per class per batch, which costs the garbage collector more).
  const cum: number[] = new Array(full.length + 1);
  cum[0] = 0;
  for (let i = 0; i < full.length; i++) cum[i + 1] = (cum[i] as number) + (full.charCodeAt(i) === 49 ? 1 : 0);
  let end = before.length;
  let len = before.length;
  for (const [i, o] of sent.entries()) {
    if (!applied[i]) continue;
    const at = BEFORE + i * PER_OUTCOME;
    const hit = hitOf(o);
    if (hit !== -1) {
      stageN++;
      // The script's Page-Hinkley step (pageHinkleyStep), on the same doubles.
      phN++;
      phMean = phMean + (hit - phMean) / phN;
      phCum = phCum + (hit - phMean + o.phDelta);
      phMax = Math.max(phMax, phCum);
      end++;
      len = Math.min(len + 1, o.windowCap);
    }
    if (o.kind === 'hit' || o.kind === 'miss' || o.kind === 'cancelled') {
      stageRealN++;
      stageSavedMs += Math.round(o.savedMs);
      stageWasteNanoUsd += Math.round(o.wasteNanoUsd);
      stageFencing += o.fencingViolation ? 1 : 0;
    }
    out[i] = {
      stage,
      stageVersion,
      a: num(at + 1),
      b: num(at + 2),
      stageN,
      stageRealN,
      stageSavedMs,
      stageWasteNanoUsd,
      stageFencing,
      window: full.slice(end - len, end),
      windowHits: { cum, start: end - len, end },
      killedUntilMs,
      tenant,
      ph: { n: phN, mean: phMean, cum: phCum, max: phMax },
    };
  }
  return out;
}

/** Applies one outcome (a batch of one); `undefined` when the outcome id was already counted (duplicate delivery). */
export async function estimatorApplyOutcome(redis: RedisLike, ks: KeySpace, x: ApplyOutcomeArgs): Promise<AppliedSnapshot | undefined> {
  const [snap] = await estimatorApplyOutcomes(redis, ks, {
    classId: x.classId,
    outcomes: [
      {
        outcomeId: x.outcomeId,
        kind: x.kind,
        wasteNanoUsd: x.wasteNanoUsd,
        savedMs: x.savedMs,
        fencingViolation: x.fencingViolation,
        windowCap: x.windowCap,
        tenant: x.tenant,
        phDelta: x.phDelta,
      },
    ],
    nowMs: x.nowMs,
    fallbackPrior: x.fallbackPrior,
    fallbackStage: x.fallbackStage,
    ...(x.forgetBeforeMs === undefined ? {} : { forgetBeforeMs: x.forgetBeforeMs }),
  });
  return snap;
}

export interface SetStageArgs {
  readonly classId: string;
  /** Expected current stage, or '*' for any stage other than `to`. */
  readonly expected: LiveStageName | '*';
  readonly expectedVersion?: number;
  readonly to: LiveStageName;
  readonly reason: string;
  readonly nowMs: number;
  readonly killedUntilMs?: number;
  /** Restart learning from the prior and empty the window. */
  readonly reset?: boolean;
}

export type EstimatorSetStageResult = { applied: true; stageVersion: number } | { applied: false; stage?: string };

export async function estimatorSetStage(redis: RedisLike, ks: KeySpace, x: SetStageArgs): Promise<EstimatorSetStageResult> {
  const k = classKeys(ks, x.classId);
  const r = await callScript<Array<string | number>>(
    redis,
    'estimatorSetStage-3.lua',
    [k.posterior, k.window, k.windowBits],
    [x.expected, x.expectedVersion ?? '', x.to, x.reason, x.nowMs, x.killedUntilMs ?? 0, x.reset === true ? 1 : 0],
  );
  if (Number(r[0]) === 1) return { applied: true, stageVersion: Number(r[1]) };
  return r[1] === undefined ? { applied: false } : { applied: false, stage: String(r[1]) };
}

export interface EnsureClassArgs {
  readonly classId: string;
  readonly prior: { readonly a: number; readonly b: number };
  readonly depType: string;
  readonly k?: number;
  readonly initialStage: 'shadow' | 'canary' | 'online';
  readonly nowMs: number;
  readonly tenant: string;
}

/** 1 created, 2 completed a hash the estimator had created provisionally, 0 already existed. */
export async function controlEnsureClass(redis: RedisLike, ks: KeySpace, x: EnsureClassArgs): Promise<0 | 1 | 2> {
  const k = classKeys(ks, x.classId);
  const r = await callScript<number>(
    redis,
    'controlEnsureClass-1.lua',
    [k.posterior],
    [x.prior.a, x.prior.b, x.depType, x.k ?? '', x.initialStage, x.nowMs, x.tenant],
  );
  return Number(r) as 0 | 1 | 2;
}

export interface SetKillArgs {
  readonly scope: KillScope;
  readonly id: string;
  readonly reason: string;
  readonly nowMs: number;
  readonly untilMs?: number;
  readonly autoGlobal?: { readonly classCount: number; readonly windowMs: number };
  readonly source: 'estimator' | 'operator';
  /** Who set the kill (an operator key's name, `estimator`); recorded with the entry. */
  readonly owner?: string;
}

export async function controlSetKill(
  redis: RedisLike,
  ks: KeySpace,
  x: SetKillArgs,
): Promise<{ changed: boolean; version: number; autoGlobal: boolean }> {
  const c = controlKeys(ks);
  const r = await callScript<number[]>(
    redis,
    'controlSetKill-1.lua',
    [c.kill],
    [
      c.alarmsChannel,
      x.scope,
      x.scope === 'global' ? '' : x.id,
      x.reason,
      x.nowMs,
      x.untilMs ?? 0,
      x.autoGlobal?.classCount ?? 0,
      x.autoGlobal?.windowMs ?? 0,
      x.source,
      x.owner ?? '',
    ],
  );
  return { changed: Number(r[0]) === 1, version: Number(r[1]), autoGlobal: Number(r[2]) === 1 };
}

export async function controlClearKill(
  redis: RedisLike,
  ks: KeySpace,
  x: { scope: KillScope; id: string; reason: string; nowMs: number },
): Promise<{ changed: boolean; version: number }> {
  const c = controlKeys(ks);
  const r = await callScript<number[]>(
    redis,
    'controlClearKill-1.lua',
    [c.kill],
    [c.alarmsChannel, x.scope, x.scope === 'global' ? '' : x.id, x.reason, x.nowMs],
  );
  return { changed: Number(r[0]) === 1, version: Number(r[1]) };
}
