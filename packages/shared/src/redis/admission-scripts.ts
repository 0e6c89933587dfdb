/**
 * Per-tenant admission (issue 10 item 4): the typed wrapper of admitRun-2.lua. The scheduler's
 * limits.ts decides what to do with the answer (429 with Retry-After).
 */
import { admissionKeys, type KeySpace } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const ADMISSION_SCRIPT_FILES = ['admitRun-2.lua'] as const;

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
