/**
 * Issue 13 item 2: the estimator applies outcomes in batches (one script per class per batch, one
 * XACK per batch), with its idempotence and its alarms unchanged.
 * - The batch script gives every outcome the snapshot it gets when applied alone, and leaves the
 *   same class state (hash, window list, seen set), over random batch splits with duplicates in
 *   a batch and redeliveries across batches.
 * - A real estimator process counts a batch with duplicate and redelivered outcomes once.
 * - A real estimator process SIGKILLed after its batch was applied and before its XACK reached
 *   Redis (a proxy holds the XACK back): another estimator takes the entries over and counts
 *   nothing twice.
 * - An alarm inside a batch kills the class at the outcome where applying one by one does.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import {
  type AppliedSnapshot,
  type ApplyOutcomeArgs,
  type BatchOutcome,
  ControlPlane,
  controlEnsureClass,
  defineEstimatorScripts,
  detectDrift,
  detectDriftPrefix,
  estimatorApplyClasses,
  estimatorApplyOutcome,
  estimatorApplyOutcomes,
  estimatorSetStage,
  mulberry32,
  type Outcome,
  PH_INITIAL,
  resolveCalibration,
  silentLogger,
  systemClock,
} from '@gambit/shared';
import { classKeys, controlKeys, type KeySpace } from '@gambit/shared/redis';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { waitFor } from './helpers.js';
import { estimatorReady, startEstimator } from './procs.js';
import { startTcpProxy } from './tcp-proxy.js';

const url = inject('redisUrl');
const redis = new Redis(url);
defineEstimatorScripts(redis);
afterAll(async () => {
  await redis.quit();
});
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});
function estimator(name: string, redisUrl: string, prefix: string, env: Record<string, string> = {}): ServiceProcess {
  const p = startEstimator(name, redisUrl, prefix, env);
  closers.push(() => p.stop());
  return p;
}

// Windows of 7 and 11 outcomes: small tail windows so the detector tests them.
const CFG = resolveCalibration({ tail: { windows: [2, 4], level: 1e-3, minReference: 3 } });
const KINDS: ApplyOutcomeArgs['kind'][] = ['hit', 'miss', 'cancelled', 'shadow_hit', 'shadow_miss'];

async function classState(ks: KeySpace, classId: string) {
  const k = classKeys(ks, classId);
  return {
    hash: await redis.hgetall(k.posterior),
    window: await redis.lrange(k.window, 0, -1),
    seen: await redis.zrange(k.seen, '0', '-1', 'WITHSCORES'),
  };
}

describe('issue 13 item 2: estimatorApplyOutcomes-N.lua', () => {
  it('gives each outcome of a batch the snapshot it gets alone and leaves the same class state (duplicates and redeliveries included)', async () => {
    const one = { prefix: uniquePrefix('batch-one') };
    const many = { prefix: uniquePrefix('batch-many') };
    // 'c1' exists (online); 'c2' gets its first outcome before ensureClass (provisional hash).
    for (const ks of [one, many]) {
      await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 9, b: 1 }, depType: 'passthrough', initialStage: 'online', nowMs: 1, tenant: 't1' });
    }
    const rnd = mulberry32(7);
    let applied = 0;
    let duplicates = 0;
    for (const classId of ['c1', 'c2']) {
      const ids: string[] = [];
      let nowMs = 1000;
      for (let b = 0; b < 25; b++) {
        const size = 1 + Math.floor(rnd() * 12);
        const batch = Array.from({ length: size }, (_, i) => {
          // About one outcome in six is a redelivery: an id seen earlier, in this batch or before.
          const reuse = ids.length > 0 && rnd() < 0.17;
          const outcomeId = reuse ? (ids[Math.floor(rnd() * ids.length)] as string) : `${classId}-o${b}-${i}`;
          ids.push(outcomeId);
          const kind = KINDS[Math.floor(rnd() * KINDS.length)] as ApplyOutcomeArgs['kind'];
          return {
            outcomeId,
            kind,
            wasteNanoUsd: Math.floor(rnd() * 5000),
            savedMs: Math.floor(rnd() * 3000),
            fencingViolation: rnd() < 0.05,
            // Two tenants' caps: the window is cut per outcome, as RPUSH + LTRIM did.
            windowCap: rnd() < 0.5 ? 7 : 11,
            tenant: 't1',
            phDelta: rnd() < 0.5 ? 0.005 : 0.05,
          };
        });
        nowMs += 1000;
        const alone: Array<AppliedSnapshot | undefined> = [];
        for (const o of batch) alone.push(await estimatorApplyOutcome(redis, one, { ...o, classId, nowMs, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' }));
        const together = await estimatorApplyOutcomes(redis, many, { classId, outcomes: batch, nowMs, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' });
        const strip = (x: AppliedSnapshot | undefined) => (x === undefined ? undefined : { ...x, windowHits: undefined });
        expect(together.map(strip)).toEqual(alone.map(strip));
        // The detector on the batch's shared prefix counts gives the verdict it gives on the window.
        for (const x of together) {
          if (x === undefined) continue;
          const { cum, start, end } = x.windowHits;
          expect(detectDriftPrefix(cum, start, end, x.ph, CFG)).toEqual(detectDrift(x.window, x.ph, CFG));
        }
        applied += together.filter((s) => s !== undefined).length;
        duplicates += together.filter((s) => s === undefined).length;
      }
      expect(await classState(many, classId)).toEqual(await classState(one, classId));
      const k = classKeys(many, classId);
      expect(await redis.get(k.windowBits)).toBe((await redis.lrange(k.window, 0, -1)).join(''));
    }
    // The draw did produce snapshots and duplicates (the comparison is not vacuous).
    expect(applied).toBeGreaterThan(150);
    expect(duplicates).toBeGreaterThan(20);
  });

  it('reads a window kept only as a list (a class from before the window string) and a reset empties both', async () => {
    const ks = { prefix: uniquePrefix('batch-legacy') };
    await controlEnsureClass(redis, ks, { classId: 'c1', prior: { a: 9, b: 1 }, depType: 'passthrough', initialStage: 'online', nowMs: 1, tenant: 't1' });
    const k = classKeys(ks, 'c1');
    await redis.rpush(k.window, '1', '0', '1');
    const o = (id: string, kind: ApplyOutcomeArgs['kind']) => ({ outcomeId: id, kind, wasteNanoUsd: 0, savedMs: 0, fencingViolation: false, windowCap: 5, tenant: 't1', phDelta: 0.005 });
    const snaps = await estimatorApplyOutcomes(redis, ks, { classId: 'c1', outcomes: [o('a', 'hit'), o('b', 'miss'), o('c', 'miss')], nowMs: 5, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' });
    expect(snaps.map((s) => s?.window)).toEqual(['1011', '10110', '01100']);
    expect(await redis.lrange(k.window, 0, -1)).toEqual(['0', '1', '1', '0', '0']);
    expect(await redis.get(k.windowBits)).toBe('01100');
    await estimatorSetStage(redis, ks, { classId: 'c1', expected: '*', to: 'shadow', reason: 'cooldown', nowMs: 6, reset: true });
    expect(await redis.exists(k.window, k.windowBits)).toBe(0);
    const [next] = await estimatorApplyOutcomes(redis, ks, { classId: 'c1', outcomes: [o('d', 'shadow_hit')], nowMs: 7, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' });
    expect(next?.window).toBe('1');
  });
});

describe('issue 13 item 2: several classes per call, any prior, any number of settings (estimatorApplyOutcomes-N.lua)', () => {
  const rndOutcome = (rnd: () => number, id: string, windowCap: number, phDelta: number): BatchOutcome => ({
    outcomeId: id,
    kind: KINDS[Math.floor(rnd() * KINDS.length)] as ApplyOutcomeArgs['kind'],
    wasteNanoUsd: Math.floor(rnd() * 5000),
    savedMs: Math.floor(rnd() * 3000),
    fencingViolation: rnd() < 0.05,
    windowCap,
    tenant: 't1',
    phDelta,
  });
  const strip = (x: AppliedSnapshot | undefined) => (x === undefined ? undefined : { ...x, windowHits: undefined });

  it('applies the classes of a batch in one call as each alone, and a class whose key has the wrong type fails alone', async () => {
    const one = { prefix: uniquePrefix('multi-one') };
    const many = { prefix: uniquePrefix('multi-many') };
    const classes = ['m1', 'm2', 'm3', 'bad'];
    for (const ks of [one, many]) {
      await controlEnsureClass(redis, ks, { classId: 'm1', prior: { a: 9, b: 1 }, depType: 'passthrough', initialStage: 'online', nowMs: 1, tenant: 't1' });
      await redis.set(classKeys(ks, 'bad').seen, 'not a sorted set');
    }
    const rnd = mulberry32(21);
    const ids: string[] = [];
    let nowMs = 1000;
    let compared = 0;
    for (let b = 0; b < 20; b++) {
      nowMs += 1000;
      const per = classes.map((c) =>
        Array.from({ length: Math.floor(rnd() * 15) }, (_, i) => {
          const reuse = ids.length > 0 && rnd() < 0.15;
          const id = reuse ? (ids[Math.floor(rnd() * ids.length)] as string) : `${c}-${b}-${i}`;
          ids.push(id);
          return rndOutcome(rnd, id, rnd() < 0.5 ? 7 : 11, 0.05);
        }),
      );
      const common = { nowMs, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' as const, forgetBeforeMs: nowMs - 10_000 };
      const together = await estimatorApplyClasses(redis, many, { ...common, classes: classes.map((classId, i) => ({ classId, outcomes: per[i] as BatchOutcome[] })) });
      for (const [i, classId] of classes.entries()) {
        const outcomes = per[i] as BatchOutcome[];
        const alone = await estimatorApplyOutcomes(redis, one, { ...common, classId, outcomes }).catch((err: unknown) => err as Error);
        const got = together[i];
        if (classId === 'bad' && outcomes.length > 0) {
          expect(alone).toBeInstanceOf(Error);
          expect(got).toBeInstanceOf(Error);
          expect(String(got)).toMatch(/WRONGTYPE/);
          continue;
        }
        expect(got).not.toBeInstanceOf(Error);
        expect((got as Array<AppliedSnapshot | undefined>).map(strip)).toEqual((alone as Array<AppliedSnapshot | undefined>).map(strip));
        compared += outcomes.length;
      }
    }
    for (const c of ['m1', 'm2', 'm3']) expect(await classState(many, c)).toEqual(await classState(one, c));
    expect(compared).toBeGreaterThan(300);
    // A batch larger than one call carries (350 outcomes over 5 classes: cut into calls by class).
    const big = ['g1', 'g2', 'g3', 'g4', 'g5'].map((classId) => ({ classId, outcomes: Array.from({ length: 70 }, (_, i) => rndOutcome(rnd, `${classId}-${i % 60}`, 20, 0.05)) }));
    const common = { nowMs: nowMs + 1000, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' as const };
    const bigTogether = await estimatorApplyClasses(redis, many, { ...common, classes: big });
    for (const [i, { classId, outcomes }] of big.entries()) {
      const alone = await estimatorApplyOutcomes(redis, one, { ...common, classId, outcomes });
      expect((bigTogether[i] as Array<AppliedSnapshot | undefined>).map(strip)).toEqual(alone.map(strip));
      expect(alone.filter((x) => x === undefined)).toHaveLength(10);
      expect(await classState(many, classId)).toEqual(await classState(one, classId));
    }
  });

  it('a prior that is not an integer: every snapshot holds the posterior the class hash stores after its outcome', async () => {
    const one = { prefix: uniquePrefix('frac-one') };
    const many = { prefix: uniquePrefix('frac-many') };
    for (const ks of [one, many]) {
      // a0 + hits is not what the hash stores (Lua writes 14 significant digits): 1/3 + 1 is stored as 1.3333333333333.
      await controlEnsureClass(redis, ks, { classId: 'f', prior: { a: 1 / 3, b: 2 / 3 }, depType: 'passthrough', initialStage: 'online', nowMs: 1, tenant: 't1' });
    }
    const rnd = mulberry32(5);
    const batch = Array.from({ length: 60 }, (_, i) => rndOutcome(rnd, `f${i % 50}`, 40, 0.05));
    const common = { classId: 'f', nowMs: 2000, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' as const };
    const alone: Array<AppliedSnapshot | undefined> = [];
    for (const o of batch) {
      const [snap] = await estimatorApplyOutcomes(redis, one, { ...common, outcomes: [o] });
      alone.push(snap);
      if (snap === undefined) continue;
      const [a, b] = await redis.hmget(classKeys(one, 'f').posterior, 'a', 'b');
      expect([snap.a, snap.b]).toEqual([Number(a), Number(b)]);
    }
    expect(alone.filter((x) => x !== undefined)).toHaveLength(50);
    // The stored posterior is not the double a0 + hits (so a caller that added them would differ).
    expect(alone.some((x) => x !== undefined && x.a !== 1 / 3 + Math.round(x.a - 1 / 3))).toBe(true);
    const together = await estimatorApplyOutcomes(redis, many, { ...common, outcomes: batch });
    expect(together.map(strip)).toEqual(alone.map(strip));
    expect(await classState(many, 'f')).toEqual(await classState(one, 'f'));
  });

  it('a batch naming more tenant settings than one call carries is applied as one call would, forgetting only after its last part', async () => {
    const one = { prefix: uniquePrefix('sets-one') };
    const many = { prefix: uniquePrefix('sets-many') };
    const rnd = mulberry32(9);
    // 200 outcomes with 200 distinct Page-Hinkley deltas (at most 94 per call), 20 of them repeated.
    const batch = Array.from({ length: 200 }, (_, i) => rndOutcome(rnd, `s${i < 180 ? i : i - 100}`, 50, 0.001 * (i + 1)));
    const common = { classId: 's', nowMs: 2000, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow' as const };
    const alone: Array<AppliedSnapshot | undefined> = [];
    for (const o of batch) alone.push(...(await estimatorApplyOutcomes(redis, one, { ...common, outcomes: [o] })));
    const together = await estimatorApplyOutcomes(redis, many, { ...common, outcomes: batch });
    expect(together.map(strip)).toEqual(alone.map(strip));
    expect(together.filter((x) => x === undefined)).toHaveLength(20);
    expect(await classState(many, 's')).toEqual(await classState(one, 's'));
    // An id applied before the dedupe cutoff and redelivered in the last part of such a batch is a
    // duplicate (the earlier parts forgot nothing), and is forgotten once the batch is applied.
    const ks = { prefix: uniquePrefix('sets-forget') };
    await estimatorApplyOutcomes(redis, ks, { ...common, nowMs: 1000, outcomes: [rndOutcome(rnd, 'old', 50, 0.05)] });
    const late = [...Array.from({ length: 150 }, (_, i) => rndOutcome(rnd, `n${i}`, 50, 0.001 * (i + 1))), rndOutcome(rnd, 'old', 50, 0.05)];
    const snaps = await estimatorApplyOutcomes(redis, ks, { ...common, nowMs: 20_000, forgetBeforeMs: 5000, outcomes: late });
    expect(snaps[150]).toBeUndefined();
    expect(snaps.filter((x) => x !== undefined)).toHaveLength(150);
    expect(await redis.zscore(classKeys(ks, 's').seen, 'old')).toBeNull();
    expect(await redis.zcard(classKeys(ks, 's').seen)).toBe(150);
  });
});

let seq = 0;
function outcome(classId: string, kind: Outcome['kind']): Outcome {
  seq++;
  return {
    outcomeId: `bo${seq}`, decisionId: `d${seq}`, tenant: 't1', workflow: 'w', runId: `r${seq}`, edgeClass: classId,
    kind, wasteUsd: kind === 'miss' ? 0.002 : 0, secondsSaved: kind === 'hit' ? 1.2 : 0, fencingViolation: false, atMs: Date.now(),
  };
}

async function pendingCount(stream: string): Promise<number> {
  const p = (await redis.xpending(stream, 'estimators')) as [number, ...unknown[]];
  return Number(p[0]);
}

/** 30 distinct outcomes over classes a and b, 10 of them published twice: 40 stream entries. */
async function publishWithDuplicates(prefix: string): Promise<Outcome[]> {
  const sent = Array.from({ length: 30 }, (_, i) => outcome(i % 2 === 0 ? 'a' : 'b', i % 3 === 0 ? 'miss' : 'hit'));
  const pipe = redis.pipeline();
  for (const [i, o] of sent.entries()) {
    pipe.xadd(controlKeys({ prefix }).outcomes, '*', 'outcome', JSON.stringify(o));
    if (i % 3 === 1) pipe.xadd(controlKeys({ prefix }).outcomes, '*', 'outcome', JSON.stringify(o));
  }
  await pipe.exec();
  return sent;
}

async function expectCountedOnce(prefix: string, sent: readonly Outcome[]): Promise<void> {
  for (const c of ['a', 'b']) {
    const mine = sent.filter((o) => o.edgeClass === c);
    const hits = mine.filter((o) => o.kind === 'hit').length;
    expect(await redis.hmget(classKeys({ prefix }, c).posterior, 'hits', 'misses', 'n', 'stageRealN')).toEqual([
      String(hits),
      String(mine.length - hits),
      String(mine.length),
      String(mine.length),
    ]);
    expect(await redis.llen(classKeys({ prefix }, c).window)).toBe(mine.length);
  }
}

function stoppedCounters(p: ServiceProcess): { applied: number; duplicates: number } {
  return JSON.parse(p.lines.find((l) => l.includes('estimator stopped')) ?? '{}') as { applied: number; duplicates: number };
}

describe('issue 13 item 2: the estimator process in batches', () => {
  it('counts a batch with duplicate outcomes, and a later redelivery, once', async () => {
    const prefix = uniquePrefix('batch-dup');
    const cp = new ControlPlane(url, { prefix }, systemClock, silentLogger);
    closers.push(() => cp.close());
    for (const c of ['a', 'b']) await cp.ensureClass(c, { depType: 'passthrough', prior: { a: 9, b: 1 }, initialStage: 'shadow', tenant: 't1' });
    // Published before the estimator starts: its first read takes all 40 entries in one batch.
    const sent = await publishWithDuplicates(prefix);
    const e = estimator('e1', url, prefix, { ESTIMATOR_BATCH: '100' });
    await estimatorReady(e);
    const stream = controlKeys({ prefix }).outcomes;
    await waitFor(async () => (await pendingCount(stream)) === 0 && Number(await redis.hget(classKeys({ prefix }, 'a').posterior, 'n')) === 15, 15_000, 'batch applied and acked');
    // A redelivery in a later batch (the scheduler published five outcomes again).
    for (const o of sent.slice(0, 5)) await redis.xadd(stream, '*', 'outcome', JSON.stringify(o));
    await waitFor(async () => {
      const g = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      const f = g[0] as unknown[];
      return Number(f[f.indexOf('entries-read') + 1]) === 45 && (await pendingCount(stream)) === 0;
    }, 15_000, 'redeliveries read and acked');
    await expectCountedOnce(prefix, sent);
    await e.stop();
    expect(stoppedCounters(e)).toMatchObject({ applied: 30, duplicates: 15 });
  });

  it('restarted under the same consumer name, it reads its own pending entries once each (their acks land before it reads again)', async () => {
    const prefix = uniquePrefix('batch-own');
    const stream = controlKeys({ prefix }).outcomes;
    const cp = new ControlPlane(url, { prefix }, systemClock, silentLogger);
    closers.push(() => cp.close());
    for (const c of ['a', 'b']) await cp.ensureClass(c, { depType: 'passthrough', prior: { a: 9, b: 1 }, initialStage: 'shadow', tenant: 't1' });
    const sent = await publishWithDuplicates(prefix);
    // Delivered to consumer e1 and never acked: what an e1 that crashed before applying leaves.
    await redis.xgroup('CREATE', stream, 'estimators', '0', 'MKSTREAM');
    await redis.xreadgroup('GROUP', 'estimators', 'e1', 'COUNT', 100, 'STREAMS', stream, '>');
    expect(await pendingCount(stream)).toBe(40);
    // Ten batches of 4 from its pending list (cursor 0), each read after the previous one's ack.
    const e = estimator('e1', url, prefix, { ESTIMATOR_BATCH: '4' });
    await estimatorReady(e);
    await waitFor(async () => (await pendingCount(stream)) === 0, 15_000, 'own pending entries applied and acked');
    await expectCountedOnce(prefix, sent);
    await e.stop();
    expect(stoppedCounters(e)).toMatchObject({ applied: 30, duplicates: 10 });
  });

  it('a crash between applying a batch and acking it counts nothing twice', async () => {
    const prefix = uniquePrefix('batch-crash');
    const stream = controlKeys({ prefix }).outcomes;
    const cp = new ControlPlane(url, { prefix }, systemClock, silentLogger);
    closers.push(() => cp.close());
    for (const c of ['a', 'b']) await cp.ensureClass(c, { depType: 'passthrough', prior: { a: 9, b: 1 }, initialStage: 'shadow', tenant: 't1' });
    const sent = await publishWithDuplicates(prefix);
    // The estimator talks to Redis through a proxy that holds back the first chunk carrying an
    // XACK (and everything after it on that connection): the batch is applied, the ack never lands.
    let ackHeld = false;
    const u = new URL(url);
    const proxy = await startTcpProxy(u.hostname, Number(u.port), (chunk) => {
      if (/\r\nxack\r\n/i.test(chunk.toString('latin1'))) ackHeld = true;
      return ackHeld;
    });
    closers.push(() => proxy.close());
    const e1 = estimator('e1', `redis://127.0.0.1:${proxy.port}`, prefix, { ESTIMATOR_BATCH: '100' });
    // (It may never log ready: its start-up commands can queue behind the held XACK.)
    await waitFor(() => ackHeld, 30_000, 'the XACK of the batch');
    await e1.kill();
    // Applied (once: the duplicates inside the batch were skipped), not acknowledged.
    await expectCountedOnce(prefix, sent);
    expect(await pendingCount(stream)).toBe(40);
    // Another estimator takes the dead one's entries over (XAUTOCLAIM) and applies nothing again.
    const e2 = estimator('e2', url, prefix, { ESTIMATOR_BATCH: '100', ESTIMATOR_CLAIM_IDLE_MS: '300' });
    await estimatorReady(e2);
    await waitFor(async () => (await pendingCount(stream)) === 0, 20_000, 'the entries claimed and acked');
    await e2.waitForLine((l) => l.includes('took over outcome entries'));
    await expectCountedOnce(prefix, sent);
    await e2.stop();
    expect(stoppedCounters(e2)).toMatchObject({ applied: 0, duplicates: 40 });
  });

  it('an alarm inside a batch kills the class at the outcome where one-by-one application does', async () => {
    const prefix = uniquePrefix('batch-alarm');
    const cp = new ControlPlane(url, { prefix }, systemClock, silentLogger);
    closers.push(() => cp.close());
    await cp.ensureClass('k', { depType: 'passthrough', prior: { a: 180, b: 20 }, initialStage: 'online', tenant: 't1' });
    // 60 hits of history, then 30 misses, all in one batch.
    const kinds: Array<'hit' | 'miss'> = [...Array.from({ length: 60 }, () => 'hit' as const), ...Array.from({ length: 30 }, () => 'miss' as const)];
    const pipe = redis.pipeline();
    for (const kind of kinds) pipe.xadd(controlKeys({ prefix }).outcomes, '*', 'outcome', JSON.stringify(outcome('k', kind)));
    await pipe.exec();
    // The first outcome at which the detector alarms when outcomes are applied one by one.
    const cfg = resolveCalibration({});
    let want: string | undefined;
    let window = '';
    for (const kind of kinds) {
      window = (window + (kind === 'hit' ? '1' : '0')).slice(-cfg.windowCap);
      const v = detectDrift(window, PH_INITIAL, cfg);
      if (v.alarm) {
        want = v.reason;
        break;
      }
    }
    expect(want).toMatch(/^drift: tail test/);
    const e = estimator('e1', url, prefix, { ESTIMATOR_BATCH: '100' });
    await estimatorReady(e);
    await waitFor(async () => (await redis.hget(classKeys({ prefix }, 'k').posterior, 'stage')) === 'killed', 15_000, 'class killed');
    expect(await redis.hmget(classKeys({ prefix }, 'k').posterior, 'stageReason', 'n', 'transitions')).toEqual([want, '90', '1']);
    const kill = JSON.parse((await redis.hget(controlKeys({ prefix }).kill, 'classes')) ?? '{}') as Record<string, { reason: string }>;
    expect(kill.k?.reason).toBe(want);
  });
});
