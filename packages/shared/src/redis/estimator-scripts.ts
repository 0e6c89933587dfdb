/**
 * Typed wrappers of the estimator's and the control plane's Lua scripts (M5, M9): applying an
 * outcome to a class, moving a class between stages, creating a class, and setting or clearing
 * kill-switch entries. Every state change of calibration goes through one of these scripts, so
 * several estimators and schedulers can act at once.
 */
import { classKeys, controlKeys, type KeySpace } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const ESTIMATOR_SCRIPTS = [
  'estimatorApplyOutcome-3.lua',
  'estimatorSetStage-2.lua',
  'controlEnsureClass-1.lua',
  'controlSetKill-1.lua',
  'controlClearKill-1.lua',
] as const;

export function defineEstimatorScripts(redis: RedisLike): void {
  defineScripts(redis, ESTIMATOR_SCRIPTS);
}

export type KillScope = 'global' | 'tenant' | 'class';
export type LiveStageName = 'shadow' | 'canary' | 'online' | 'killed';

/** Redeliveries (XAUTOCLAIM, retries) arrive within minutes; ids are kept a day. */
export const DEFAULT_DEDUPE_WINDOW_MS = 24 * 3600 * 1000;

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
  /** Outcome ids are remembered this long for deduplication (default 24 h). */
  readonly dedupeWindowMs?: number;
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
  readonly killedUntilMs: number;
  readonly tenant: string;
  readonly ph: { readonly n: number; readonly mean: number; readonly cum: number; readonly max: number };
}

/** Applies an outcome; `undefined` when the outcome id was already counted (duplicate delivery). */
export async function estimatorApplyOutcome(redis: RedisLike, ks: KeySpace, x: ApplyOutcomeArgs): Promise<AppliedSnapshot | undefined> {
  const k = classKeys(ks, x.classId);
  const r = await callScript<Array<string | number>>(
    redis,
    'estimatorApplyOutcome-3.lua',
    [k.posterior, k.seen, k.window],
    [
      x.outcomeId,
      x.kind,
      Math.round(x.wasteNanoUsd),
      Math.round(x.savedMs),
      x.fencingViolation ? 1 : 0,
      x.windowCap,
      x.nowMs,
      x.fallbackPrior.a,
      x.fallbackPrior.b,
      x.fallbackStage,
      x.tenant,
      x.phDelta,
      x.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS,
    ],
  );
  if (Number(r[0]) === 0) return undefined;
  const num = (i: number) => Number(r[i] ?? 0);
  return {
    stage: String(r[1]) as LiveStageName,
    stageVersion: num(2),
    a: num(3),
    b: num(4),
    stageN: num(5),
    stageRealN: num(6),
    stageSavedMs: num(7),
    stageWasteNanoUsd: num(8),
    stageFencing: num(9),
    window: String(r[10] ?? ''),
    killedUntilMs: num(11),
    tenant: String(r[12] ?? ''),
    ph: { n: num(13), mean: num(14), cum: num(15), max: num(16) },
  };
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
    'estimatorSetStage-2.lua',
    [k.posterior, k.window],
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
