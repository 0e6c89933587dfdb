/**
 * The estimator service as real processes (M5, M9, ARCHITECTURE.md estimator): several
 * estimators share the outcomes stream and count every outcome exactly once; invalid entries
 * are dead-lettered with a reason and acked; entries left pending by a dead consumer are taken
 * over; stages move shadow → canary → online → killed → shadow with reasons; the kill switch
 * is set and published on alarm and goes global when several classes alarm together.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ControlPlane, type Outcome, parseKillHash, silentLogger, systemClock } from '@gambit/shared';
import { classKeys, controlKeys, tenantKeys } from '@gambit/shared/redis';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { waitFor } from './helpers.js';
import { estimatorReady, startEstimator } from './procs.js';

const url = inject('redisUrl');
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

function client(): Redis {
  const r = new Redis(url);
  closers.push(() => r.quit());
  return r;
}
function estimator(name: string, prefix: string, env: Record<string, string> = {}): ServiceProcess {
  const p = startEstimator(name, url, prefix, env);
  closers.push(() => p.stop());
  return p;
}
function controlPlane(prefix: string): ControlPlane {
  const cp = new ControlPlane(url, { prefix }, systemClock, silentLogger, { pollMs: 100 });
  closers.push(() => cp.close());
  return cp;
}

let seq = 0;
function outcome(classId: string, kind: Outcome['kind'], extra: Partial<Outcome> = {}): Outcome {
  seq++;
  return {
    outcomeId: `o${seq}`,
    decisionId: `d${seq}`,
    tenant: 't1',
    workflow: 'w',
    runId: `r${seq}`,
    edgeClass: classId,
    kind,
    wasteUsd: kind === 'miss' ? 0.002 : 0,
    secondsSaved: kind === 'hit' ? 1.2 : 0,
    fencingViolation: false,
    atMs: Date.now(),
    ...extra,
  };
}

async function pendingCount(r: Redis, stream: string): Promise<number> {
  const p = (await r.xpending(stream, 'estimators')) as [number, ...unknown[]];
  return Number(p[0]);
}

describe('M5 estimator service: stream consumption', () => {
  it('three estimators share the stream and count every outcome exactly once, duplicates included', async () => {
    const prefix = uniquePrefix('est-share');
    const r = client();
    const cp = controlPlane(prefix);
    const classes = ['a', 'b', 'c', 'd'];
    for (const c of classes) await cp.ensureClass(c, { depType: 'lookup', prior: { a: 8, b: 2 }, initialStage: 'shadow', tenant: 't1' });
    const ests = ['e1', 'e2', 'e3'].map((n) => estimator(n, prefix, { ESTIMATOR_BATCH: '20' }));
    await Promise.all(ests.map(estimatorReady));
    const sent: Outcome[] = [];
    for (let i = 0; i < 800; i++) sent.push(outcome(classes[i % 4] as string, i % 3 === 0 ? 'shadow_miss' : 'shadow_hit'));
    // Every fourth outcome is published twice (a redelivery by the scheduler).
    const batch = r.pipeline();
    for (const [i, o] of sent.entries()) {
      batch.xadd(controlKeys({ prefix }).outcomes, '*', 'outcome', JSON.stringify(o));
      if (i % 4 === 0) batch.xadd(controlKeys({ prefix }).outcomes, '*', 'outcome', JSON.stringify(o));
    }
    await batch.exec();
    const total = async () => {
      let n = 0;
      for (const c of classes) n += Number((await r.hget(classKeys({ prefix }, c).posterior, 'n')) ?? 0);
      return n;
    };
    await waitFor(async () => (await total()) === 800 && (await pendingCount(r, controlKeys({ prefix }).outcomes)) === 0, 30_000, '800 outcomes applied and acked');
    for (const c of classes) {
      const mine = sent.filter((o) => o.edgeClass === c);
      const hits = mine.filter((o) => o.kind === 'shadow_hit').length;
      expect(await r.hmget(classKeys({ prefix }, c).posterior, 'hits', 'misses')).toEqual([String(hits), String(mine.length - hits)]);
    }
    const info = (await r.xinfo('CONSUMERS', controlKeys({ prefix }).outcomes, 'estimators')) as unknown[][];
    expect(info.length).toBe(3);
    // Nothing more arrives after a quiet second (no double counting by late claims).
    await new Promise((res) => setTimeout(res, 1000));
    expect(await total()).toBe(800);
    // Each process reports its counters on SIGTERM: together they applied 800 and skipped the 200 redeliveries.
    await Promise.all(ests.map((p) => p.stop()));
    const counters = ests.map((p) => JSON.parse(p.lines.find((l) => l.includes('estimator stopped')) ?? '{}') as { applied: number; duplicates: number });
    expect(counters.reduce((s, c) => s + c.applied, 0)).toBe(800);
    expect(counters.reduce((s, c) => s + c.duplicates, 0)).toBe(200);
    expect(counters.filter((c) => c.applied > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('dead-letters invalid entries with the reason and acks them', async () => {
    const prefix = uniquePrefix('est-dead');
    const r = client();
    const c = controlKeys({ prefix });
    const e = estimator('e1', prefix);
    await estimatorReady(e);
    await r.xadd(c.outcomes, '*', 'outcome', '{not json');
    await r.xadd(c.outcomes, '*', 'something', 'else');
    await r.xadd(c.outcomes, '*', 'outcome', JSON.stringify({ ...outcome('a', 'hit'), kind: 'maybe' }));
    await r.xadd(c.outcomes, '*', 'outcome', JSON.stringify({ ...outcome('a', 'hit'), edgeClass: 'bad{class}' }));
    await r.xadd(c.outcomes, '*', 'outcome', JSON.stringify(outcome('a', 'shadow_hit')));
    await waitFor(async () => (await r.xlen(c.outcomesDead)) === 4 && (await pendingCount(r, c.outcomes)) === 0, 15_000, 'dead letters');
    const dead = await r.xrange(c.outcomesDead, '-', '+');
    const reasons = dead.map(([, f]) => f[f.indexOf('reason') + 1]);
    expect(reasons[0]).toBe('outcome: not JSON');
    expect(reasons[1]).toBe('no `outcome` field');
    expect(reasons[2]).toMatch(/^outcome\.kind: /);
    expect(reasons[3]).toMatch(/^outcome\.edgeClass: /);
    expect(await r.hget(classKeys({ prefix }, 'a').posterior, 'n')).toBe('1');
  });

  it('takes over entries a dead consumer left pending (XAUTOCLAIM)', async () => {
    const prefix = uniquePrefix('est-claim');
    const r = client();
    const c = controlKeys({ prefix });
    await r.xgroup('CREATE', c.outcomes, 'estimators', '0', 'MKSTREAM');
    for (let i = 0; i < 30; i++) await r.xadd(c.outcomes, '*', 'outcome', JSON.stringify(outcome('a', 'shadow_hit')));
    // A consumer reads the entries and dies before acking them.
    await r.xreadgroup('GROUP', 'estimators', 'dead-one', 'COUNT', 100, 'STREAMS', c.outcomes, '>');
    expect(await pendingCount(r, c.outcomes)).toBe(30);
    const e = estimator('e1', prefix, { ESTIMATOR_CLAIM_IDLE_MS: '300' });
    await estimatorReady(e);
    await waitFor(async () => (await pendingCount(r, c.outcomes)) === 0, 15_000, 'pending entries claimed and acked');
    expect(await r.hget(classKeys({ prefix }, 'a').posterior, 'n')).toBe('30');
    await e.waitForLine((l) => l.includes('took over outcome entries'));
  });
});

describe('estimator service: stream trimming and shutdown', () => {
  it('trims only entries every consumer group has acknowledged', async () => {
    const prefix = uniquePrefix('est-trim');
    const r = client();
    const c = controlKeys({ prefix });
    for (let i = 0; i < 50; i++) await r.xadd(c.outcomes, '*', 'outcome', JSON.stringify(outcome('a', 'shadow_hit')));
    // Another group (e.g. an audit reader) that has read 10 entries and acked none.
    await r.xgroup('CREATE', c.outcomes, 'audit', '0');
    const read = (await r.xreadgroup('GROUP', 'audit', 'a1', 'COUNT', 10, 'STREAMS', c.outcomes, '>')) as Array<[string, Array<[string, string[]]>]>;
    const auditIds = (read[0]?.[1] ?? []).map((e) => e[0]);
    const e = estimator('e1', prefix, { ESTIMATOR_TRIM_INTERVAL_MS: '200' });
    await estimatorReady(e);
    await waitFor(async () => (await r.hget(classKeys({ prefix }, 'a').posterior, 'n')) === '50', 15_000, 'applied');
    await new Promise((res) => setTimeout(res, 800));
    expect(await r.xlen(c.outcomes)).toBe(50);
    await r.xack(c.outcomes, 'audit', ...auditIds);
    await waitFor(async () => (await r.xlen(c.outcomes)) === 41, 10_000, 'trimmed up to the audit group');
    await r.xgroup('DESTROY', c.outcomes, 'audit');
    await waitFor(async () => (await r.xlen(c.outcomes)) === 1, 10_000, 'trimmed up to the estimators group');
  });

  it('SIGTERM: exits 0, removes its heartbeat at once and reports its counters', async () => {
    const prefix = uniquePrefix('est-term');
    const r = client();
    const e = estimator('e1', prefix);
    await estimatorReady(e);
    expect(await r.hexists(controlKeys({ prefix }).heartbeat, 'e1')).toBe(1);
    await e.stop();
    expect(await e.exited()).toBe(0);
    expect(await r.hexists(controlKeys({ prefix }).heartbeat, 'e1')).toBe(0);
    expect(e.lines.some((l) => l.includes('estimator stopped') && l.includes('"applied":0'))).toBe(true);
  });
});

describe('M9 estimator service: stages and the kill switch', () => {
  it('moves a class shadow → canary → online → killed → shadow, each with a reason, and announces the kill', async () => {
    const prefix = uniquePrefix('est-stages');
    const ks = { prefix };
    const r = client();
    // Per-tenant calibration overrides and λ, read from the tenant config hash.
    await r.hset(tenantKeys(ks, 't1').config, 'lambdaUsdPerSec', '0.01', 'calibration', JSON.stringify({ nMin: 20, cooldownMs: 1500 }));
    const cp = controlPlane(prefix);
    await cp.ensureClass('k', { depType: 'passthrough', prior: { a: 9, b: 1 }, initialStage: 'shadow', tenant: 't1' });
    const e = estimator('e1', prefix);
    await estimatorReady(e);
    await cp.ready();
    await waitFor(() => cp.heartbeatFresh(), 5000, 'estimator heartbeat seen');
    const kills: string[] = [];
    cp.onKill((ev) => kills.push(`${ev.scope}:${ev.id}`));
    const stage = async () => (await cp.classState('k', { fresh: true }))?.stage;
    const pattern = '1111111110'; // 90% hits, deterministic
    let i = 0;
    const publish = async (kind: (hit: boolean) => Outcome['kind'], n: number) => {
      for (let j = 0; j < n; j++, i++) await cp.publishOutcome(outcome('k', kind(pattern[i % 10] === '1')));
    };
    await publish((h) => (h ? 'shadow_hit' : 'shadow_miss'), 20);
    await waitFor(async () => (await stage()) === 'canary', 10_000, 'canary');
    expect((await cp.classState('k', { fresh: true }))?.stageReason).toMatch(/^calibrated: \d+\/20 hits inside the 0.95 predictive interval/);
    // Real canary outcomes: 90% hits saving 1.2 s at λ = 0.01 $/s, misses wasting $0.002: net > 0.
    await publish((h) => (h ? 'hit' : 'miss'), 20);
    await waitFor(async () => (await stage()) === 'online', 10_000, 'online');
    expect((await cp.classState('k', { fresh: true }))?.stageReason).toMatch(/^net value \$[0-9.]+ >= 0 over 20 canary outcomes, no fencing violation$/);
    expect(cp.speculationBlocked('t1', 'k')).toEqual({ blocked: false });
    // Drift: misses only. The detector (M9.5) compares the latest windows with the class's own
    // earlier outcomes: the 40 shadow and canary outcomes above (36 hits) are that history, so the
    // all-miss window is far below it and alarms within the 30 misses.
    for (let j = 0; j < 30; j++) await cp.publishOutcome(outcome('k', 'miss'));
    await waitFor(() => cp.speculationBlocked('t1', 'k').scope === 'class', 10_000, 'class killed');
    // The kill entry is written first (speculation stops at once), the class's stage right after
    // it in a second script: a reader between the two sees the kill and the old stage.
    await waitFor(async () => (await stage()) === 'killed', 10_000, 'stage killed');
    const st = await cp.classState('k', { fresh: true });
    expect(st?.stage).toBe('killed');
    expect(st?.stageReason).toMatch(/^drift: tail test P\(H<=0 of \d+ \| \d+\/\d+ before\)=\d\.\d+e-\d+ < 6\.00e-6$/);
    expect(kills).toEqual(['class:k']);
    expect(parseKillHash(await r.hgetall(controlKeys(ks).kill)).classes.k?.reason).toBe(st?.stageReason);
    // Cooldown (1.5 s for this tenant) → shadow, learning restarted from the prior, kill entry cleared.
    await waitFor(async () => (await stage()) === 'shadow', 10_000, 'back to shadow');
    const back = await cp.classState('k', { fresh: true });
    expect(back).toMatchObject({ stageReason: 'cooldown elapsed: re-entering shadow', a: 9, b: 1, n: 0 });
    await waitFor(() => !cp.speculationBlocked('t1', 'k').blocked, 5000, 'unblocked');
    expect(Number(await r.hget(controlKeys(ks).kill, 'version'))).toBe(2);
    expect(Number(await r.hget(classKeys(ks, 'k').posterior, 'transitions'))).toBe(4);
  });

  it('a fencing violation in canary sends the class back to shadow', async () => {
    const prefix = uniquePrefix('est-fence');
    const cp = controlPlane(prefix);
    await cp.ensureClass('f', { depType: 'lookup', prior: { a: 8, b: 2 }, initialStage: 'canary', tenant: 't1' });
    const e = estimator('e1', prefix);
    await estimatorReady(e);
    await cp.publishOutcome(outcome('f', 'hit', { fencingViolation: true }));
    await waitFor(async () => (await cp.classState('f', { fresh: true }))?.stage === 'shadow', 10_000, 'shadow');
    expect((await cp.classState('f', { fresh: true }))?.stageReason).toBe('fencing violation in canary (1)');
  });

  it('goes global when three classes alarm within the window', async () => {
    const prefix = uniquePrefix('est-global');
    const cp = controlPlane(prefix);
    for (const c of ['g1', 'g2', 'g3']) {
      await cp.ensureClass(c, { depType: 'passthrough', prior: { a: 90, b: 10 }, initialStage: 'online', tenant: 't1' });
    }
    const e = estimator('e1', prefix, { ESTIMATOR_AUTO_GLOBAL_CLASSES: '3', ESTIMATOR_AUTO_GLOBAL_WINDOW_MS: '60000' });
    await estimatorReady(e);
    await cp.ready();
    await waitFor(() => cp.heartbeatFresh(), 5000, 'estimator heartbeat seen');
    // History first (M9.5: the detector compares recent outcomes with the class's own earlier
    // ones and needs tail.minReference of them): 60 hits each, which alarm nothing.
    for (const c of ['g1', 'g2', 'g3']) for (let j = 0; j < 60; j++) await cp.publishOutcome(outcome(c, 'hit'));
    const r = client();
    await waitFor(async () => {
      const ns = await Promise.all(['g1', 'g2', 'g3'].map((c) => r.hget(classKeys({ prefix }, c).posterior, 'n')));
      return ns.every((x) => x === '60');
    }, 15_000, 'history applied');
    for (const c of ['g1', 'g2', 'g3']) expect(cp.speculationBlocked('t1', c).blocked).toBe(false);
    for (const c of ['g1', 'g2']) for (let j = 0; j < 30; j++) await cp.publishOutcome(outcome(c, 'miss'));
    await waitFor(() => cp.speculationBlocked('t1', 'g2').scope === 'class', 10_000, 'g2 killed');
    expect(cp.speculationBlocked('t1', 'other').blocked).toBe(false);
    for (let j = 0; j < 30; j++) await cp.publishOutcome(outcome('g3', 'miss'));
    await waitFor(() => cp.speculationBlocked('t1', 'other').scope === 'global', 10_000, 'global kill');
    expect(cp.killState().global?.reason).toBe('auto: 3 classes alarmed within 60000 ms');
  });
});
