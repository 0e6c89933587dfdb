/**
 * Issue 13 item 1: reserveLaunch-2.lua, a speculative launch's budget reservation (M10) and its
 * spend-cap hold (issue 10 item 3) in one call, against a real redis-server: both or neither,
 * the same writes as reserveBudget-1.lua + holdSpend-1.lua `hold`, and reserved and held once
 * when the same call arrives again (ioredis re-sends a script after a lost reply).
 */
import { admissionKeys, holdSpend, type KeySpace, releaseSpendHold, reserveBudget, reserveLaunch, settleRunSpend, tenantKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';

const redis = new Redis(inject('redisUrl'));
afterAll(async () => {
  await redis.quit();
});

const ks: KeySpace = { prefix: uniquePrefix('reslaunch') };
// 2026-12-07: the period fields below.
const AT = Date.UTC(2026, 11, 7, 12);
const open = (id: string) => ({ id: `r1:b.s1:unused:${id}`, runId: 'r1', attemptId: 'b.s1', atMs: AT });
const hold = (key: string, amountNanoUsd: number, capNanoUsd?: number) => ({ key, amountNanoUsd, capNanoUsd, period: 'month' as const });

describe('reserveLaunch-2.lua', () => {
  it('writes what reserveBudget (with open) and holdSpend write, in one call', async () => {
    const a = 'tA';
    const b = 'tB';
    expect(await reserveLaunch(redis, ks, { tenant: a, amountNanoUsd: 700, limitNanoUsd: 1_000, open: open('u1'), hold: hold('b.s1:k1', 700, 5_000) })).toEqual({ code: 'reserved' });
    // The same through the two scripts of before, in another tenant.
    expect(await reserveBudget(redis, ks, { tenant: b, amountNanoUsd: 700, limitNanoUsd: 1_000, open: open('u1') })).toBe(true);
    expect((await holdSpend(redis, ks, { tenant: b, runId: 'r1', key: 'b.s1:k1', amountNanoUsd: 700, capNanoUsd: 5_000, period: 'month', nowMs: AT })).ok).toBe(true);
    expect(await redis.hgetall(tenantKeys(ks, a).budget)).toEqual(await redis.hgetall(tenantKeys(ks, b).budget));
    const spendA = await redis.hgetall(admissionKeys(ks, a).spend);
    expect(spendA).toEqual(await redis.hgetall(admissionKeys(ks, b).spend));
    expect(spendA).toMatchObject({ 'held:day:2026-12-07': '700', 'held:month:2026-12': '700' });
    // The hold is one holdSpend knows: released by key, settled with the run.
    expect(await releaseSpendHold(redis, ks, { tenant: a, runId: 'r1', key: 'b.s1:k1' })).toBe(true);
    expect(await redis.hget(admissionKeys(ks, a).spend, 'held:month:2026-12')).toBe('0');
    expect(await settleRunSpend(redis, ks, { tenant: b, runId: 'r1', costNanoUsd: 300 })).toBe(300);
  });

  it('writes nothing when either refuses: the budget, or the spend cap', async () => {
    const t = 'tC';
    // Budget: 1,000 of which 600 are reserved; 700 more does not fit.
    expect(await reserveBudget(redis, ks, { tenant: t, amountNanoUsd: 600, limitNanoUsd: 1_000 })).toBe(true);
    const before = { budget: await redis.hgetall(tenantKeys(ks, t).budget), spend: await redis.hgetall(admissionKeys(ks, t).spend) };
    expect(await reserveLaunch(redis, ks, { tenant: t, amountNanoUsd: 700, limitNanoUsd: 1_000, open: open('u1'), hold: hold('b.s1:k1', 700) })).toEqual({ code: 'budget' });
    expect({ budget: await redis.hgetall(tenantKeys(ks, t).budget), spend: await redis.hgetall(admissionKeys(ks, t).spend) }).toEqual(before);
    // Spend cap: 1,000 a month, 500 held already; 700 more does not fit, though the budget would.
    expect((await holdSpend(redis, ks, { tenant: t, runId: 'r0', key: 'a.a1:k0', amountNanoUsd: 500, capNanoUsd: 1_000, period: 'month', nowMs: AT })).ok).toBe(true);
    const held = { budget: await redis.hgetall(tenantKeys(ks, t).budget), spend: await redis.hgetall(admissionKeys(ks, t).spend) };
    expect(await reserveLaunch(redis, ks, { tenant: t, amountNanoUsd: 300, limitNanoUsd: 1_000, open: open('u2'), hold: hold('b.s1:k2', 700, 1_000) })).toEqual({
      code: 'cap',
      bookedNanoUsd: 0,
      heldNanoUsd: 500,
    });
    expect({ budget: await redis.hgetall(tenantKeys(ks, t).budget), spend: await redis.hgetall(admissionKeys(ks, t).spend) }).toEqual(held);
    // Within both: reserved and held.
    expect(await reserveLaunch(redis, ks, { tenant: t, amountNanoUsd: 300, limitNanoUsd: 1_000, open: open('u3'), hold: hold('b.s1:k3', 500, 1_000) })).toEqual({ code: 'reserved' });
    expect(await redis.hmget(tenantKeys(ks, t).budget, 'reservedNanoUsd')).toEqual(['900']);
    expect(await redis.hget(admissionKeys(ks, t).spend, 'held:month:2026-12')).toBe('1000');
  });

  it('a call re-sent with the same reservation id reserves and holds once', async () => {
    const t = 'tD';
    const call = { tenant: t, amountNanoUsd: 700, limitNanoUsd: 1_000, open: open('u1'), hold: hold('b.s1:k1', 700, 1_000) };
    expect(await reserveLaunch(redis, ks, call)).toEqual({ code: 'reserved' });
    expect(await reserveLaunch(redis, ks, call)).toEqual({ code: 'reserved' });
    expect(await redis.hget(tenantKeys(ks, t).budget, 'reservedNanoUsd')).toBe('700');
    expect(await redis.hget(admissionKeys(ks, t).spend, 'held:month:2026-12')).toBe('700');
    expect(Object.keys(JSON.parse((await redis.hget(admissionKeys(ks, t).spend, 'hold:r1')) ?? '{}'))).toEqual(['b.s1:k1']);
    // Another reservation (another id) is still checked against the budget.
    expect(await reserveLaunch(redis, ks, { ...call, open: open('u2'), hold: hold('b.s1:k2', 700, 1_000) })).toEqual({ code: 'budget' });
  });
});
