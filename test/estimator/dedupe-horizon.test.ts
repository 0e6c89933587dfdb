/**
 * Issue 13 item 5: the outcome-id dedupe's horizon (services/estimator/src/dedupe-horizon.ts)
 * against a real Redis stream: ids are forgotten a window before the stream's delivery cut, so
 * an entry left pending (applied, never acked) keeps its id remembered however long it waits,
 * and once everything is acked the horizon moves up to now.
 */
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { DedupeHorizon, MIN_DEDUPE_WINDOW_MS } from '../../services/estimator/src/dedupe-horizon.js';
import { parseEnv } from '../../services/estimator/src/env.js';

const redis = new Redis(inject('redisUrl'));
afterAll(async () => {
  await redis.quit();
});

describe('outcome-id dedupe horizon (issue 13 item 5)', () => {
  it('forgets nothing until the cut is read; then a window before the oldest pending entry, however old', async () => {
    const stream = `${uniquePrefix('horizon')}:{ctl}:outcomes`;
    const h = new DedupeHorizon(MIN_DEDUPE_WINDOW_MS);
    expect(h.forgetBeforeMs(10_000_000)).toBeUndefined();
    // No stream yet: nothing can be redelivered; the window before now.
    await h.refresh(redis, [stream]);
    expect(h.forgetBeforeMs(10_000_000)).toBe(10_000_000 - MIN_DEDUPE_WINDOW_MS);
    await redis.xgroup('CREATE', stream, 'estimators', '0', 'MKSTREAM');
    await redis.xadd(stream, '1000-0', 'outcome', 'a');
    await redis.xadd(stream, '2000-0', 'outcome', 'b');
    await redis.xadd(stream, '3000-0', 'outcome', 'c');
    // Nothing delivered yet: the cut is 0-0, nothing is forgotten before it.
    await h.refresh(redis, [stream]);
    expect(h.forgetBeforeMs(10_000_000)).toBe(0 - MIN_DEDUPE_WINDOW_MS);
    // All three delivered, the first one never acked (its estimator died after applying it).
    await redis.xreadgroup('GROUP', 'estimators', 'e1', 'COUNT', 3, 'STREAMS', stream, '>');
    await redis.xack(stream, 'estimators', '2000-0', '3000-0');
    await h.refresh(redis, [stream]);
    expect(h.forgetBeforeMs(10_000_000)).toBe(1000 - MIN_DEDUPE_WINDOW_MS);
    // Acked: the cut is the last delivered entry; the window before it (or before now, if earlier).
    await redis.xack(stream, 'estimators', '1000-0');
    await h.refresh(redis, [stream]);
    expect(h.forgetBeforeMs(10_000_000)).toBe(3000 - MIN_DEDUPE_WINDOW_MS);
    expect(h.forgetBeforeMs(2_000)).toBe(2_000 - MIN_DEDUPE_WINDOW_MS);
    // Over several streams (shards), the earliest cut counts.
    const other = `${uniquePrefix('horizon')}:{outcomes:1}:stream`;
    await redis.xgroup('CREATE', other, 'estimators', '0', 'MKSTREAM');
    await redis.xadd(other, '500-0', 'outcome', 'd');
    await redis.xreadgroup('GROUP', 'estimators', 'e1', 'COUNT', 1, 'STREAMS', other, '>');
    await h.refresh(redis, [stream, other]);
    expect(h.forgetBeforeMs(10_000_000)).toBe(500 - MIN_DEDUPE_WINDOW_MS);
  });

  it('ESTIMATOR_DEDUPE_WINDOW_MS: 10 min by default, at least a minute and two claim cycles', () => {
    expect(parseEnv({}).ESTIMATOR_DEDUPE_WINDOW_MS).toBe(600_000);
    expect(parseEnv({ ESTIMATOR_DEDUPE_WINDOW_MS: '120000' }).ESTIMATOR_DEDUPE_WINDOW_MS).toBe(120_000);
    expect(() => parseEnv({ ESTIMATOR_DEDUPE_WINDOW_MS: '59999' })).toThrow(/ESTIMATOR_DEDUPE_WINDOW_MS/);
    expect(() => parseEnv({ ESTIMATOR_DEDUPE_WINDOW_MS: '60000', ESTIMATOR_CLAIM_IDLE_MS: '40000' })).toThrow(/two claim cycles/);
    expect(() => new DedupeHorizon(1_000)).toThrow(RangeError);
  });
});
