/**
 * M9.5 control-plane client against a real Redis: kill-switch delivery (pub/sub and version
 * check), heartbeat fail-safe, class creation and state, outcome publishing, operator actions.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  ControlPlane,
  controlSetKill,
  defineEstimatorScripts,
  type KillEvent,
  silentLogger,
  systemClock,
  ValidationError,
} from '@gambit/shared';
import { classKeys, controlKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { fakeBeat, waitFor } from './helpers.js';
import { startTcpProxy } from './tcp-proxy.js';

const url = inject('redisUrl');
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

/** Kills class c1 directly with the script, as an estimator would. */
async function controlPlaneKillClass(redis: Redis, ks: { prefix: string }): Promise<void> {
  defineEstimatorScripts(redis);
  await controlSetKill(redis, ks, { scope: 'class', id: 'c1', reason: 'drift', nowMs: Date.now(), untilMs: Date.now() + 60_000, source: 'estimator' });
}

function setup(label: string, opts = {}) {
  const ks = { prefix: uniquePrefix(label) };
  const redis = new Redis(url);
  closers.push(() => redis.quit());
  const cp = new ControlPlane(url, ks, systemClock, silentLogger, { pollMs: 100, heartbeatStaleMs: 600, ...opts });
  closers.push(() => cp.close());
  return { ks, redis, cp };
}

describe('M9.5 ControlPlane', () => {
  it('is blocked with scope heartbeat until an estimator beats, then unblocked; stale again when beats stop', async () => {
    const { ks, redis, cp } = setup('cp-hb');
    await cp.ready();
    expect(cp.speculationBlocked('t1', 'c1')).toEqual({ blocked: true, scope: 'heartbeat' });
    const stop = fakeBeat(redis, ks);
    await waitFor(() => !cp.speculationBlocked('t1', 'c1').blocked, 5000, 'fresh heartbeat');
    await stop();
    await waitFor(() => cp.speculationBlocked('t1', 'c1').scope === 'heartbeat', 5000, 'stale heartbeat');
  });

  it('applies operator kills of every scope, calls onKill once per kill, and revives', async () => {
    const { ks, redis, cp } = setup('cp-kill');
    const other = setup('cp-kill-other');
    void other;
    const cp2 = new ControlPlane(url, ks, systemClock, silentLogger, { pollMs: 100, heartbeatStaleMs: 600 });
    closers.push(() => cp2.close());
    const stop = fakeBeat(redis, ks);
    closers.push(stop);
    await Promise.all([cp.ready(), cp2.ready()]);
    await waitFor(() => !cp2.speculationBlocked('t1', 'c1').blocked, 5000, 'fresh heartbeat');
    const events: KillEvent[] = [];
    cp2.onKill((e) => events.push(e));

    await cp.killTenant('t1', 'tenant over budget');
    await waitFor(() => cp2.speculationBlocked('t1', 'c1').scope === 'tenant', 2000, 'tenant kill seen');
    expect(cp2.speculationBlocked('t2', 'c1').blocked).toBe(false);

    await expect(cp.killClass('c9', 'operator')).rejects.toThrow('class "c9" does not exist');
    await cp.ensureClass('c9', { depType: 'lookup', prior: { a: 2, b: 2 }, tenant: 't2' });
    await cp.killClass('c9', 'operator', { owner: 'alice' });
    await waitFor(() => cp2.speculationBlocked('t2', 'c9').scope === 'class', 2000, 'class kill seen');
    await cp.killGlobal('incident');
    await waitFor(() => cp2.speculationBlocked('t2', 'c1').scope === 'global', 2000, 'global kill seen');
    await cp.killGlobal('incident again'); // idempotent: no new version, no new event
    expect(events.map((e) => `${e.scope}:${e.id}`)).toEqual(['tenant:t1', 'class:c9', 'global:']);
    expect(Number(await redis.hget(controlKeys(ks).kill, 'version'))).toBe(3);

    await cp.revive({ scope: 'global' });
    await cp.revive({ scope: 'tenant', tenant: 't1' });
    await cp.revive({ scope: 'class', classId: 'c9' });
    await waitFor(() => !cp2.speculationBlocked('t1', 'c9').blocked, 2000, 'revived');
    expect(cp2.killState().version).toBe(6);
  });

  it('ensureClass creates the posterior once with the prior; classState reads it; publishOutcome validates', async () => {
    const { ks, redis, cp } = setup('cp-class');
    await cp.ready();
    expect(await cp.ensureClass('w1.a-b', { depType: 'lookup', prior: { a: 8, b: 2 }, initialStage: 'canary', tenant: 't1' })).toBe('created');
    expect(await cp.ensureClass('w1.a-b', { depType: 'lookup', prior: { a: 1, b: 1 } })).toBe('existed');
    const st = await cp.classState('w1.a-b');
    expect(st).toMatchObject({ stage: 'canary', a: 8, b: 2, hits: 0, misses: 0, n: 0, depType: 'lookup' });
    expect(st?.stageReason).toContain('initial stage canary');
    expect(await redis.sismember(controlKeys(ks).classes, 'w1.a-b')).toBe(1);
    expect(await cp.classState('nope')).toBeUndefined();
    expect(await redis.exists(classKeys(ks, 'nope').posterior)).toBe(0);

    const outcome = {
      outcomeId: 'o1', decisionId: 'd1', tenant: 't1', workflow: 'w1', runId: 'r1', edgeClass: 'w1.a-b',
      kind: 'hit' as const, wasteUsd: 0, secondsSaved: 1.5, fencingViolation: false, atMs: Date.now(),
    };
    await cp.publishOutcome(outcome);
    const entries = await redis.xrange(controlKeys(ks).outcomes, '-', '+');
    expect(entries).toHaveLength(1);
    expect(JSON.parse(entries[0]?.[1][1] ?? '{}')).toMatchObject({ outcomeId: 'o1', kind: 'hit' });
    await expect(cp.publishOutcome({ ...outcome, kind: 'bogus' as never })).rejects.toBeInstanceOf(ValidationError);
  });

  it('follows a kill hash that was deleted (version went back) after two consistent reads', async () => {
    const { ks, redis, cp } = setup('cp-reset');
    const stop = fakeBeat(redis, ks);
    closers.push(stop);
    await cp.ready();
    await cp.killGlobal('incident');
    expect(cp.speculationBlocked('t', 'c').scope).toBe('global');
    await redis.del(controlKeys(ks).kill);
    await waitFor(() => !cp.speculationBlocked('t', 'c').blocked, 5000, 'reset followed');
    expect(cp.killState().version).toBe(0);
    await cp.killTenant('t', 'again');
    expect(cp.speculationBlocked('t', 'c').scope).toBe('tenant');
  });

  it('starts while Redis is unreachable without crashing, stays blocked, and syncs once Redis answers', async () => {
    const ks = { prefix: uniquePrefix('cp-late') };
    const redis = new Redis(url);
    closers.push(() => redis.quit());
    const stop = fakeBeat(redis, ks);
    closers.push(stop);
    await controlPlaneKillClass(redis, ks);
    const u = new URL(url);
    const proxy = await startTcpProxy(u.hostname, Number(u.port));
    closers.push(() => proxy.close());
    proxy.cut();
    const cp = new ControlPlane(`redis://127.0.0.1:${proxy.port}`, ks, systemClock, silentLogger, { pollMs: 100, heartbeatStaleMs: 600 });
    closers.push(() => cp.close());
    let ready = false;
    void cp.ready().then(() => {
      ready = true;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(ready).toBe(false);
    expect(cp.speculationBlocked('t1', 'c1')).toEqual({ blocked: true, scope: 'heartbeat' });
    proxy.restore();
    await waitFor(() => ready, 10_000, 'ready after Redis came back');
    await waitFor(() => cp.speculationBlocked('t1', 'c1').scope === 'class', 5000, 'class kill synced');
  });

  it('close() is idempotent', async () => {
    const { cp } = setup('cp-close');
    await cp.ready();
    await Promise.all([cp.close(), cp.close()]);
    await cp.close();
  });
});
