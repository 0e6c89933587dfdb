/**
 * Issue 10 item 3, the spend cap at launch: every launch (authoritative, speculative, paid
 * guess) first holds its worst-case cost against the tenant's `spendCapUsd` for the cap's period
 * (holdSpend-1.lua: booked + held + this launch never passes the cap, atomically, so overshoot is
 * 0 whatever the number of schedulers); a launch that is not made releases its hold; an ended run,
 * once nothing of it can bill any more, books its settled cost and releases all its holds
 * (settleRunSpend-2.lua). What a refusal means is the caller's: an authoritative node fails the
 * run (`SPEND_CAP_EXCEEDED`), a speculative launch or a paid guess becomes a `budget` WAIT.
 */
import { randomBytes } from 'node:crypto';
import { nanoToUsd, usdToNano } from '@gambit/shared';
import { holdSpend, type KeySpace, type RedisLike, releaseSpendHold, reserveLaunch, spendPeriodField } from '@gambit/shared/redis';
import type { Limits } from '../limits.js';

export interface SpendCapDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  /** The tenant's limits (spendCapUsd, spendCapPeriod); without it launches are held with no cap. */
  readonly limits?: { get(tenant: string, nowMs?: number): Promise<Limits> };
}

export type SpendHoldResult =
  | { readonly ok: true; readonly key: string }
  | { readonly ok: false; readonly message: string };

/**
 * A launch's hold key, unique per launch try (racing schedulers may hold for the same attempt
 * id): 72 random bits are enough, and a shorter key is a smaller hold in the tenant's spend hash
 * (issue 13 item 3).
 */
function launchHoldKey(attemptId: string): string {
  return `${attemptId}:${randomBytes(9).toString('base64url')}`;
}

/** The tenant's spend cap at `nowMs` (undefined: none) and its period (default month). */
async function spendCapOf(deps: SpendCapDeps, tenant: string, nowMs: number): Promise<{ capUsd: number | undefined; capNanoUsd: number | undefined; period: 'day' | 'month' }> {
  const limits = deps.limits === undefined ? undefined : await deps.limits.get(tenant, nowMs);
  const capUsd = limits?.spendCapUsd;
  return { capUsd, capNanoUsd: capUsd === undefined ? undefined : usdToNano(capUsd), period: limits?.spendCapPeriod ?? 'month' };
}

/** Holds `amountNanoUsd` for a launch of run `runId` (`what` names it in the refusal). */
export async function holdLaunchSpend(
  deps: SpendCapDeps,
  a: {
    tenant: string;
    runId: string;
    attemptId: string;
    amountNanoUsd: number;
    nowMs: number;
    what: string;
    /** Trims of finished attempts of the run, applied first in the same script call (issue 13 item 1). */
    trims?: ReadonlyArray<{ readonly attemptId: string; readonly costNanoUsd: number }>;
  },
): Promise<SpendHoldResult> {
  const { capUsd, capNanoUsd, period } = await spendCapOf(deps, a.tenant, a.nowMs);
  const key = launchHoldKey(a.attemptId);
  const amountNanoUsd = Math.max(0, Math.ceil(a.amountNanoUsd));
  const r = await holdSpend(deps.redis, deps.ks, {
    tenant: a.tenant,
    runId: a.runId,
    key,
    amountNanoUsd,
    capNanoUsd,
    period,
    nowMs: a.nowMs,
    ...(a.trims === undefined ? {} : { trims: a.trims }),
  });
  if (r.ok) return { ok: true, key };
  return {
    ok: false,
    message: `SPEND_CAP_EXCEEDED: ${a.what} may cost up to ${nanoToUsd(amountNanoUsd)} USD, and the tenant's spend this ${period} (${spendPeriodField(period, a.nowMs)}), ${nanoToUsd(r.bookedNanoUsd)} USD booked plus ${nanoToUsd(r.heldNanoUsd)} USD held by running work, would pass its cap spendCapUsd = ${capUsd} USD`,
  };
}

/**
 * Issue 13 item 1: a speculative launch or a paid guess reserves its price in the tenant's
 * budget (M10, recorded open under `open.id`) and holds its worst case against the spend cap in
 * one call (reserveLaunch-2.lua): both or neither. `budget`: the budget refused; `cap`: the
 * spend cap refused (both are the rule's `budget` WAIT for the caller).
 */
export async function reserveAndHoldLaunch(
  deps: SpendCapDeps,
  a: {
    tenant: string;
    runId: string;
    attemptId: string;
    amountNanoUsd: number;
    limitNanoUsd: number | undefined;
    open: { id: string; runId: string; attemptId: string; atMs: number };
  },
): Promise<{ readonly ok: true; readonly key: string } | { readonly ok: false; readonly refusedBy: 'budget' | 'cap' }> {
  const { capNanoUsd, period } = await spendCapOf(deps, a.tenant, a.open.atMs);
  const key = launchHoldKey(a.attemptId);
  const r = await reserveLaunch(deps.redis, deps.ks, {
    tenant: a.tenant,
    amountNanoUsd: a.amountNanoUsd,
    limitNanoUsd: a.limitNanoUsd,
    open: a.open,
    hold: { key, amountNanoUsd: a.amountNanoUsd, capNanoUsd, period },
  });
  return r.code === 'reserved' ? { ok: true, key } : { ok: false, refusedBy: r.code };
}

/** Releases the hold of a launch that was not made (lost a race, failed to write). */
export async function releaseLaunchSpend(deps: SpendCapDeps, a: { tenant: string; runId: string; key: string }): Promise<void> {
  await releaseSpendHold(deps.redis, deps.ks, a);
}
