/**
 * Per-tenant admission (issue 10 item 4): the typed wrapper of admitRun-2.lua. The scheduler's
 * limits.ts decides what to do with the answer (429 with Retry-After). And the spend cap at
 * launch (issue 10 item 3): holdSpend-1.lua and settleRunSpend-2.lua.
 */
import { admissionKeys, type KeySpace, tenantKeys } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const ADMISSION_SCRIPT_FILES = ['admitRun-2.lua', 'holdSpend-1.lua', 'settleRunSpend-2.lua'] as const;

export function defineAdmissionScripts(redis: RedisLike): void {
  defineScripts(redis, ADMISSION_SCRIPT_FILES);
}

export type Admission = { readonly kind: 'admitted' } | { readonly kind: 'rate'; readonly retryAfterMs: number } | { readonly kind: 'inflight'; readonly runs: number };

export async function admitRun(
  redis: RedisLike,
  ks: KeySpace,
  a: { tenant: string; runId: string; nowMs: number; ratePerSec: number; burst: number; maxInFlightRuns: number },
): Promise<Admission> {
  const k = admissionKeys(ks, a.tenant);
  const [code, n] = await callScript<[number, number]>(redis, 'admitRun-2.lua', [k.ratelimit, k.inflight], [
    Math.round(a.nowMs),
    a.ratePerSec,
    Math.max(1, Math.floor(a.burst)),
    Math.max(1, Math.floor(a.maxInFlightRuns)),
    a.runId,
  ]);
  if (code === 1) return { kind: 'admitted' };
  if (code === 0) return { kind: 'rate', retryAfterMs: n };
  return { kind: 'inflight', runs: n };
}

/** The spend ledger's field of the UTC day or month containing `nowMs`: `day:2026-12-07`, `month:2026-12`. */
export function spendPeriodField(period: 'day' | 'month', nowMs: number): string {
  const iso = new Date(nowMs).toISOString();
  return period === 'day' ? `day:${iso.slice(0, 10)}` : `month:${iso.slice(0, 7)}`;
}

function nanoArg(name: string, v: number): string {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer (nano-USD), got ${v}`);
  return String(v);
}

export type SpendHold = { readonly ok: boolean; readonly bookedNanoUsd: number; readonly heldNanoUsd: number };

/**
 * holdSpend-1.lua: holds `amountNanoUsd` (a launch's worst case) against the tenant's spend cap
 * (`capNanoUsd`, undefined for none) in the cap's period; `ok: false` when booked + held + amount
 * would pass the cap (nothing written). `key` must be unique per launch try (release it with
 * `releaseSpendHold` when the launch is not made); every hold of a run is released when its spend
 * is settled (`settleRunSpend`).
 */
export async function holdSpend(
  redis: RedisLike,
  ks: KeySpace,
  a: {
    tenant: string;
    runId: string;
    key: string;
    amountNanoUsd: number;
    capNanoUsd: number | undefined;
    period: 'day' | 'month';
    nowMs: number;
    /** Trims of this run (`trimSpendHold`) applied first in the same call (issue 13 item 1). */
    trims?: ReadonlyArray<{ readonly attemptId: string; readonly costNanoUsd: number }>;
  },
): Promise<SpendHold> {
  defineScripts(redis, ADMISSION_SCRIPT_FILES);
  const [ok, booked, held] = await callScript<[number, number, number]>(redis, 'holdSpend-1.lua', [admissionKeys(ks, a.tenant).spend], [
    'hold',
    a.runId,
    a.key,
    nanoArg('amountNanoUsd', a.amountNanoUsd),
    a.capNanoUsd === undefined ? '-1' : nanoArg('capNanoUsd', a.capNanoUsd),
    spendPeriodField(a.period, a.nowMs),
    spendPeriodField('day', a.nowMs),
    spendPeriodField('month', a.nowMs),
    ...(a.trims === undefined || a.trims.length === 0 ? [] : [JSON.stringify(a.trims.map((t) => [t.attemptId, Number(nanoArg('trims.costNanoUsd', t.costNanoUsd))]))]),
  ]);
  return { ok: ok === 1, bookedNanoUsd: Number(booked), heldNanoUsd: Number(held) };
}

/** holdSpend-1.lua `release`: drops one hold of a launch that was not made; false when there was none. */
export async function releaseSpendHold(redis: RedisLike, ks: KeySpace, a: { tenant: string; runId: string; key: string }): Promise<boolean> {
  defineScripts(redis, ADMISSION_SCRIPT_FILES);
  return (await callScript<number>(redis, 'holdSpend-1.lua', [admissionKeys(ks, a.tenant).spend], ['release', a.runId, a.key])) === 1;
}

/**
 * holdSpend-1.lua `trim`: an attempt's cost is final (succeeded or failed): its launch's holds
 * come down to that cost. Returns the nano-USD no longer held.
 */
export async function trimSpendHold(redis: RedisLike, ks: KeySpace, a: { tenant: string; runId: string; attemptId: string; costNanoUsd: number }): Promise<number> {
  defineScripts(redis, ADMISSION_SCRIPT_FILES);
  return Number(await callScript<number>(redis, 'holdSpend-1.lua', [admissionKeys(ks, a.tenant).spend], ['trim', a.runId, a.attemptId, nanoArg('costNanoUsd', a.costNanoUsd)]));
}

/**
 * settleRunSpend-2.lua: books an ended run's settled cost into the periods of its holds and
 * releases them, once per run; returns the nano-USD booked, or undefined when the run held
 * nothing (already settled, or it never launched).
 */
export async function settleRunSpend(redis: RedisLike, ks: KeySpace, a: { tenant: string; runId: string; costNanoUsd: number }): Promise<number | undefined> {
  defineScripts(redis, ADMISSION_SCRIPT_FILES);
  const r = await callScript<number>(redis, 'settleRunSpend-2.lua', [admissionKeys(ks, a.tenant).spend, tenantKeys(ks, a.tenant).settled(a.runId)], [
    a.runId,
    nanoArg('costNanoUsd', a.costNanoUsd),
  ]);
  return r < 0 ? undefined : Number(r);
}

/**
 * settleRunSpend-2.lua `late`: an ended run's cost is `costNanoUsd` now, more than the
 * `bookedNanoUsd` its record says was booked (a try billed after its settlement): what is above
 * the most booked so far goes into the spend periods of `nowMs`, once (a running total per run,
 * so a call re-sent after a lost reply, or a second scheduler, books nothing twice). Returns the
 * nano-USD booked now.
 */
export async function bookLateRunSpend(
  redis: RedisLike,
  ks: KeySpace,
  a: { tenant: string; runId: string; costNanoUsd: number; bookedNanoUsd: number; nowMs: number },
): Promise<number> {
  defineScripts(redis, ADMISSION_SCRIPT_FILES);
  return Number(
    await callScript<number>(redis, 'settleRunSpend-2.lua', [admissionKeys(ks, a.tenant).spend, tenantKeys(ks, a.tenant).settled(a.runId)], [
      a.runId,
      nanoArg('costNanoUsd', a.costNanoUsd),
      'late',
      spendPeriodField('day', a.nowMs),
      spendPeriodField('month', a.nowMs),
      nanoArg('bookedNanoUsd', a.bookedNanoUsd),
    ]),
  );
}
