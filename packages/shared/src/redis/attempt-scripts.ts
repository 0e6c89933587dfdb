/**
 * Typed wrappers of the worker's attempt scripts (M6 fencing, M8 billing): start a try, record
 * its result or failure, stage effects. Each script is one Lua file in `lua/` whose header
 * documents KEYS, ARGV and return codes; every key of a call is in the run's hash tag, so the
 * scripts work on Redis Cluster. Unexpected replies raise RedisScriptError (one place).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { TokenUsage } from '../core/types.js';
import { RedisScriptError } from '../errors.js';
import type { AttemptRecord, AttemptStatus } from '../schemas/jobs.js';
import { type KeySpace, runKeys, toolKeys } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';
import { decodeAttempt } from './state-codec.js';

export const ATTEMPT_SCRIPT_FILES = ['startAttempt-2.lua', 'finishAttempt-2.lua', 'failAttempt-2.lua', 'stageEffect-2.lua', 'markAttention-1.lua', 'chargeOnce-2.lua'] as const;

/** Registers the attempt scripts on a client (idempotent). */
export function defineAttemptScripts(redis: RedisLike): void {
  defineScripts(redis, ATTEMPT_SCRIPT_FILES);
}

/** A staged effect (M6): what a `staged` tool would do, held until the scheduler releases it. */
export const StagedEffectSchema = z.object({ type: z.string().min(1) }).catchall(z.unknown());
export type StagedEffect = z.infer<typeof StagedEffectSchema>;

export interface AttemptRef {
  readonly tenant: string;
  readonly runId: string;
  readonly attemptId: string;
  /** The epoch the job carries; a record with another epoch fences the job. */
  readonly epoch: number;
}

export type StartAttemptResult =
  | { readonly code: 'OK'; readonly tries: number }
  | { readonly code: 'DONE' | 'FENCED'; readonly tries: number; readonly status: AttemptStatus }
  | { readonly code: 'MISSING' };

function bad(file: string, reply: unknown): RedisScriptError {
  return new RedisScriptError(`${file}: unexpected reply ${JSON.stringify(reply)}`);
}

/**
 * startAttempt-2.lua: marks the attempt running and returns the try number, or why not to run.
 * Each call carries a key of its own (`startKey`; 48 random bits unless given), so a call that
 * ioredis re-sends after its reply was lost (a reconnect) is the same try, not a second one.
 */
export async function startAttempt(
  redis: RedisLike,
  ks: KeySpace,
  a: AttemptRef & { readonly workerId: string; readonly nowMs: number; readonly startKey?: string },
): Promise<StartAttemptResult> {
  const file = 'startAttempt-2.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const key = a.startKey ?? randomBytes(6).toString('base64url');
  const reply = await callScript<unknown[]>(redis, file, [k.attempts, k.staging(a.attemptId)], [a.attemptId, a.epoch, a.workerId, a.nowMs, key]);
  const [code, tries, status] = reply;
  if (code === 'OK') return { code, tries: Number(tries) };
  if (code === 'DONE' || code === 'FENCED') return { code, tries: Number(tries), status: status as AttemptStatus };
  if (code === 'MISSING') return { code };
  throw bad(file, reply);
}

export type FinishAttemptCode = 'OK' | 'FENCED' | 'STALE' | 'DONE' | 'ABORTED' | 'MISSING';

export interface FinishAttemptArgs extends AttemptRef {
  /** Try number returned by startAttempt. */
  readonly tryNo: number;
  /** `ok`: the operation finished; `aborted`: stopped early (bill only, never accept). */
  readonly outcome: 'ok' | 'aborted';
  readonly output: string;
  readonly usage: TokenUsage;
  readonly usageEstimated: boolean;
  /** Integer nano-USD spent by this try. */
  readonly costNanoUsd: number;
  readonly finishedAtMs: number;
}

function checkNano(costNanoUsd: number): void {
  if (!Number.isSafeInteger(costNanoUsd) || costNanoUsd < 0) throw new RangeError(`costNanoUsd must be a non-negative integer, got ${costNanoUsd}`);
}

/**
 * finishAttempt-2.lua: bills the try (once) and accepts the output only if the attempt is still
 * live at this epoch and try. FENCED means the money was recorded and the output rejected.
 */
export async function finishAttempt(redis: RedisLike, ks: KeySpace, a: FinishAttemptArgs): Promise<{ code: FinishAttemptCode; status: string }> {
  checkNano(a.costNanoUsd);
  const file = 'finishAttempt-2.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(
    redis,
    file,
    [k.attempts, k.run],
    [a.attemptId, a.epoch, a.tryNo, a.outcome, a.output, JSON.stringify(a.usage), a.usageEstimated ? '1' : '0', a.costNanoUsd, a.finishedAtMs],
  );
  const [code, status] = reply;
  if (code === 'OK' || code === 'FENCED' || code === 'STALE' || code === 'DONE' || code === 'ABORTED' || code === 'MISSING')
    return { code, status: String(status) };
  throw bad(file, reply);
}

export type FailAttemptCode = 'OK' | 'FENCED' | 'STALE' | 'DONE' | 'MISSING';

export interface FailAttemptArgs extends AttemptRef {
  /** Try number from startAttempt, or 0 when the attempt never started. */
  readonly tryNo: number;
  readonly error: string;
  /** What the failed try spent, if anything. */
  readonly usage?: TokenUsage;
  readonly usageEstimated?: boolean;
  readonly costNanoUsd?: number;
  readonly finishedAtMs: number;
}

/** failAttempt-2.lua: marks a live attempt failed (non-retryable error), billing what it spent. */
export async function failAttempt(redis: RedisLike, ks: KeySpace, a: FailAttemptArgs): Promise<{ code: FailAttemptCode; status: string }> {
  const cost = a.costNanoUsd ?? 0;
  checkNano(cost);
  const file = 'failAttempt-2.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(
    redis,
    file,
    [k.attempts, k.run],
    [a.attemptId, a.epoch, a.tryNo, a.error, a.usage === undefined ? '' : JSON.stringify(a.usage), a.usageEstimated ? '1' : '0', cost, a.finishedAtMs],
  );
  const [code, status] = reply;
  if (code === 'OK' || code === 'FENCED' || code === 'STALE' || code === 'DONE' || code === 'MISSING') return { code, status: String(status) };
  throw bad(file, reply);
}

export type MarkAttentionCode = 'OK' | 'FENCED' | 'STALE' | 'DONE' | 'MISSING';

/**
 * markAttention-1.lua (issue 11 D2): stops the attempt in `needs_attention` instead of running an
 * irreversible operation again blindly. Fenced by status, epoch and try.
 */
export async function markAttention(
  redis: RedisLike,
  ks: KeySpace,
  a: AttemptRef & { readonly tryNo: number; readonly reason: string; readonly nowMs: number },
): Promise<{ code: MarkAttentionCode; status: string }> {
  const file = 'markAttention-1.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(redis, file, [k.attempts], [a.attemptId, a.epoch, a.tryNo, a.reason, a.nowMs]);
  const [code, status] = reply;
  if (code === 'OK' || code === 'FENCED' || code === 'STALE' || code === 'DONE' || code === 'MISSING') return { code, status: String(status) };
  throw bad(file, reply);
}

/** The member of the attention index (`P:{ctl}:attention`) for one node of one run. */
export function attentionMember(tenant: string, runId: string, nodeId: string): string {
  return `${tenant}|${runId}|${nodeId}`;
}

/**
 * chargeOnce-2.lua: the built-in `charge_card` effect, applied at most once per idempotency key.
 * `replayed` is true when a charge under the key already existed (nothing was applied now).
 */
export async function chargeOnce(
  redis: RedisLike,
  ks: KeySpace,
  a: { readonly tenant: string; readonly idempotencyKey: string; readonly charge: Readonly<Record<string, unknown>> },
): Promise<{ replayed: boolean; charge: Record<string, unknown> }> {
  const file = 'chargeOnce-2.lua';
  defineScripts(redis, [file]);
  const k = toolKeys(ks, a.tenant);
  const reply = await callScript<unknown[]>(redis, file, [k.charges, k.chargeKeys], [a.idempotencyKey, JSON.stringify({ ...a.charge, idempotencyKey: a.idempotencyKey })]);
  const [code, charge] = reply;
  if ((code === 'CHARGED' || code === 'REPLAYED') && typeof charge === 'string') return { replayed: code === 'REPLAYED', charge: JSON.parse(charge) as Record<string, unknown> };
  throw bad(file, reply);
}

export type StageEffectCode = 'OK' | 'FENCED' | 'STALE' | 'DONE' | 'MISSING';

/**
 * stageEffect-2.lua: appends effects to the attempt's staging list if this try is live.
 * `stagedBefore` is how many effects this try staged in its earlier calls (0, the default, for its
 * first call; the worker stages a try's effects in one call). The script is idempotent: a call
 * executed twice because ioredis re-sent it after its reply was lost (the connection dropped:
 * CLIENT KILL, a Redis restart) appends once. A staging list that matches neither `stagedBefore`
 * nor `stagedBefore` plus this call's effects is a caller's error (CONFLICT): thrown.
 */
export async function stageEffects(
  redis: RedisLike,
  ks: KeySpace,
  a: AttemptRef & { readonly tryNo: number; readonly effects: readonly StagedEffect[]; readonly stagedBefore?: number },
): Promise<{ code: StageEffectCode; length: number }> {
  const file = 'stageEffect-2.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const effects = a.effects.map((e) => JSON.stringify(StagedEffectSchema.parse(e)));
  const reply = await callScript<unknown[]>(redis, file, [k.attempts, k.staging(a.attemptId)], [a.attemptId, a.epoch, a.tryNo, a.stagedBefore ?? 0, ...effects]);
  const [code, length] = reply;
  if (code === 'OK' || code === 'FENCED' || code === 'STALE' || code === 'DONE' || code === 'MISSING') return { code, length: Number(length) };
  throw bad(file, reply);
}

/** Reads and validates one attempt record (undefined when absent). */
export async function readAttempt(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, attemptId: string): Promise<AttemptRecord | undefined> {
  const raw = await redis.hget(runKeys(ks, tenant, runId).attempts, attemptId);
  if (raw === null) return undefined;
  return decodeAttempt(raw, attemptId);
}

/** The staged effects of an attempt, in staging order. */
export async function readStaging(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, attemptId: string): Promise<StagedEffect[]> {
  const raw = await redis.lrange(runKeys(ks, tenant, runId).staging(attemptId), 0, -1);
  return raw.map((r) => StagedEffectSchema.parse(JSON.parse(r)));
}
