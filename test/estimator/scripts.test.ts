/**
 * M5/M9 Lua scripts against a real Redis: outcome application is atomic and idempotent, shadow
 * outcomes learn, cancelled outcomes only cost; stage moves are compare-and-set; kill entries
 * are idempotent, versioned, published, and go global when many classes alarm together.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  DEFAULT_CALIBRATION,
  PH_INITIAL,
  pageHinkleyStep,
  controlClearKill,
  controlEnsureClass,
  controlSetKill,
  defineEstimatorScripts,
  estimatorApplyOutcome,
  estimatorSetStage,
  parseKillHash,
  type ApplyOutcomeArgs,
} from '@gambit/shared';
import { classKeys, controlKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';

const url = inject('redisUrl');
const redis = new Redis(url);
defineEstimatorScripts(redis);
afterAll(async () => {
  await redis.quit();
});

const base = (classId: string, outcomeId: string, kind: ApplyOutcomeArgs['kind']): ApplyOutcomeArgs => ({
  classId,
  outcomeId,
  kind,
  wasteNanoUsd: kind === 'miss' || kind === 'cancelled' ? 1500 : 0,
  savedMs: kind === 'hit' ? 800 : 0,
  fencingViolation: false,
  windowCap: 5,
  nowMs: 1000,
  fallbackPrior: { a: 1, b: 1 },
  fallbackStage: 'shadow',
  tenant: 't1',
  phDelta: 0.05,
});

describe('M5 estimatorApplyOutcomes-N.lua (one outcome)', () => {
  it('counts an outcome delivered twice once (idempotent by outcome id)', async () => {
    const ks = { prefix: uniquePrefix('lua-idem') };
    await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 9, b: 1 }, depType: 'passthrough', initialStage: 'online', nowMs: 1, tenant: 't1' });
    const first = await estimatorApplyOutcome(redis, ks, base('c1', 'o1', 'hit'));
    const again = await estimatorApplyOutcome(redis, ks, base('c1', 'o1', 'hit'));
    expect(first).toMatchObject({ stage: 'online', a: 10, b: 1, stageN: 1, stageRealN: 1, stageSavedMs: 800, window: '1' });
    expect(again).toBeUndefined();
    await Promise.all(Array.from({ length: 20 }, () => estimatorApplyOutcome(redis, ks, base('c1', 'o2', 'miss'))));
    const h = await redis.hgetall(classKeys(ks, 'c1').posterior);
    expect(h).toMatchObject({ a: '10', b: '2', hits: '1', misses: '1', n: '2', stageWasteNanoUsd: '1500' });
  });

  it('forgets only the outcome ids applied before the cutoff it is given, so the seen set stays bounded', async () => {
    const ks = { prefix: uniquePrefix('lua-dedupe') };
    const seen = classKeys(ks, 'c1').seen;
    const at = (id: string, nowMs: number, forgetBeforeMs?: number) =>
      estimatorApplyOutcome(redis, ks, { ...base('c1', id, 'hit'), nowMs, ...(forgetBeforeMs === undefined ? {} : { forgetBeforeMs }) });
    expect(await at('old', 1_000)).toBeDefined();
    expect(await at('mid', 5_000)).toBeDefined();
    expect(await at('old', 9_000, 1_000)).toBeUndefined(); // applied at 1_000, not before the cutoff: kept, counted once
    expect(await at('new', 20_000, 5_000)).toBeDefined(); // forgets ids applied before 5_000
    expect(await redis.zrange(seen, '0', '-1')).toEqual(['mid', 'new']);
    expect(await at('mid', 21_000)).toBeUndefined(); // without a cutoff nothing is forgotten
    expect(await at('new', 25_000, 20_000)).toBeUndefined();
    expect(await redis.zrange(seen, '0', '-1')).toEqual(['mid', 'new']); // all duplicates: nothing written, nothing trimmed
    expect(await at('newer', 26_000, 20_000)).toBeDefined();
    expect(await redis.zrange(seen, '0', '-1')).toEqual(['new', 'newer']);
    expect(Number(await redis.hget(classKeys(ks, 'c1').posterior, 'hits'))).toBe(4);
  });

  it('learns from shadow outcomes at zero cost; cancelled adds cost, not evidence; window is capped', async () => {
    const ks = { prefix: uniquePrefix('lua-shadow') };
    await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 2, b: 5 }, depType: 'tool_args', initialStage: 'shadow', nowMs: 1, tenant: 't1' });
    const kinds: ApplyOutcomeArgs['kind'][] = ['shadow_hit', 'shadow_miss', 'shadow_hit', 'shadow_hit', 'shadow_hit', 'shadow_miss', 'cancelled'];
    let last: Awaited<ReturnType<typeof estimatorApplyOutcome>>;
    for (const [i, k] of kinds.entries()) last = await estimatorApplyOutcome(redis, ks, base('c1', `o${i}`, k));
    expect(last).toMatchObject({ a: 6, b: 7, stageN: 6, stageRealN: 1, stageWasteNanoUsd: 1500, stageSavedMs: 0, window: '01110' });
  });

  it('keeps the Page-Hinkley state exactly as the pure pageHinkleyStep computes it', async () => {
    const ks = { prefix: uniquePrefix('lua-ph') };
    await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 9, b: 1 }, depType: 'passthrough', initialStage: 'online', nowMs: 1, tenant: 't1' });
    const seq = '1111111110111111101111111111011111000100010000100000'.split('');
    let want = PH_INITIAL;
    let got: Awaited<ReturnType<typeof estimatorApplyOutcome>>;
    for (const [i, c] of seq.entries()) {
      want = pageHinkleyStep(want, c === '1' ? 1 : 0, DEFAULT_CALIBRATION.pageHinkley).state;
      got = await estimatorApplyOutcome(redis, ks, { ...base('c1', `o${i}`, c === '1' ? 'hit' : 'miss'), windowCap: 200 });
    }
    expect(got?.ph.n).toBe(want.n);
    for (const f of ['mean', 'cum', 'max'] as const) expect(got?.ph[f]).toBeCloseTo(want[f], 12);
  });

  it('creates a provisional class for an outcome that arrives before ensureClass, and ensureClass completes it', async () => {
    const ks = { prefix: uniquePrefix('lua-prov') };
    await estimatorApplyOutcome(redis, ks, base('c1', 'o1', 'shadow_hit'));
    expect(await redis.hget(classKeys(ks, 'c1').posterior, 'provisional')).toBe('1');
    expect(await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 8, b: 2 }, depType: 'lookup', initialStage: 'shadow', nowMs: 1, tenant: 't1' })).toBe(2);
    expect(await redis.hmget(classKeys(ks, 'c1').posterior, 'a', 'b', 'provisional')).toEqual(['9', '2', null]);
    expect(await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 1, b: 1 }, depType: 'lookup', initialStage: 'online', nowMs: 1, tenant: 't1' })).toBe(0);
  });
});

describe('M9 estimatorSetStage-3.lua', () => {
  it('applies a transition once under compare-and-set, with its reason, and resets learning on request', async () => {
    const ks = { prefix: uniquePrefix('lua-stage') };
    await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 9, b: 1 }, depType: 'passthrough', initialStage: 'shadow', nowMs: 1, tenant: 't1' });
    await estimatorApplyOutcome(redis, ks, base('c1', 'o1', 'shadow_miss'));
    const tries = await Promise.all(
      [1, 2, 3].map(() => estimatorSetStage(redis, ks, { classId: 'c1', expected: 'shadow', expectedVersion: 0, to: 'canary', reason: 'calibrated', nowMs: 5 })),
    );
    expect(tries.filter((t) => t.applied)).toHaveLength(1);
    expect(await redis.hmget(classKeys(ks, 'c1').posterior, 'stage', 'stageReason', 'stageVersion', 'stageN', 'prevStage')).toEqual(['canary', 'calibrated', '1', '0', 'shadow']);
    expect((await estimatorSetStage(redis, ks, { classId: 'c1', expected: '*', to: 'canary', reason: 'x', nowMs: 6 })).applied).toBe(false);
    await estimatorSetStage(redis, ks, { classId: 'c1', expected: '*', to: 'shadow', reason: 'cooldown', nowMs: 7, reset: true });
    expect(await redis.hmget(classKeys(ks, 'c1').posterior, 'a', 'b', 'n')).toEqual(['9', '1', '0']);
    expect(await redis.exists(classKeys(ks, 'c1').window)).toBe(0);
    expect(await estimatorSetStage(redis, ks, { classId: 'nope', expected: '*', to: 'shadow', reason: 'x', nowMs: 7 })).toEqual({ applied: false });
  });
});

describe('M9.5 controlSetKill-1.lua / controlClearKill-1.lua', () => {
  it('sets entries idempotently with a monotonic version, publishes each change, and goes global on many alarms', async () => {
    const ks = { prefix: uniquePrefix('lua-kill') };
    const c = controlKeys(ks);
    const sub = redis.duplicate();
    const msgs: string[] = [];
    sub.on('message', (_c, m) => msgs.push(m));
    await sub.subscribe(c.alarmsChannel);
    const auto = { classCount: 3, windowMs: 10_000 };
    const k1 = await controlSetKill(redis, ks, { scope: 'class', id: 'c1', reason: 'drift', nowMs: 1000, untilMs: 5000, autoGlobal: auto, source: 'estimator' });
    const k1again = await controlSetKill(redis, ks, { scope: 'class', id: 'c1', reason: 'drift', nowMs: 1001, autoGlobal: auto, source: 'estimator' });
    expect(k1).toEqual({ changed: true, version: 1, autoGlobal: false });
    expect(k1again).toEqual({ changed: false, version: 1, autoGlobal: false });
    // c2 alarms outside the window of c1's alarm: no global yet.
    await controlSetKill(redis, ks, { scope: 'class', id: 'c2', reason: 'drift', nowMs: 20_000, autoGlobal: auto, source: 'estimator' });
    await controlSetKill(redis, ks, { scope: 'class', id: 'c3', reason: 'drift', nowMs: 21_000, autoGlobal: auto, source: 'estimator' });
    const k4 = await controlSetKill(redis, ks, { scope: 'class', id: 'c4', reason: 'drift', nowMs: 22_000, autoGlobal: auto, source: 'estimator' });
    expect(k4).toEqual({ changed: true, version: 5, autoGlobal: true });
    const s = parseKillHash(await redis.hgetall(c.kill));
    expect(s.global?.reason).toBe('auto: 3 classes alarmed within 10000 ms');
    expect(Object.keys(s.classes).sort()).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(s.classes.c1).toMatchObject({ reason: 'drift', atMs: 1000, untilMs: 5000 });
    const cl = await controlClearKill(redis, ks, { scope: 'class', id: 'c1', reason: 'cooldown', nowMs: 30_000 });
    const clAgain = await controlClearKill(redis, ks, { scope: 'class', id: 'c1', reason: 'cooldown', nowMs: 30_000 });
    expect(cl).toEqual({ changed: true, version: 6 });
    expect(clAgain).toEqual({ changed: false, version: 6 });
    await controlClearKill(redis, ks, { scope: 'global', id: '', reason: 'op', nowMs: 30_001 });
    for (const id of ['c2', 'c3', 'c4']) await controlClearKill(redis, ks, { scope: 'class', id, reason: 'op', nowMs: 30_002 });
    expect(parseKillHash(await redis.hgetall(c.kill))).toEqual({ version: 10, tenants: {}, classes: {} });
    const deadline = Date.now() + 2000;
    while (msgs.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(msgs.map((m) => JSON.parse(m).version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(JSON.parse(msgs[4] ?? '{}')).toMatchObject({ action: 'kill', scope: 'global' });
    await sub.quit();
  });
});
