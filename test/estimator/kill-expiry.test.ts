/**
 * M9.5 kill expiry in the estimator's sweep (issue 12 item 3): an operator kill holds until
 * revived unless it was given an expiry; when that passes, the entry is cleared and the class's
 * stage and posterior are left exactly as they were. A drift kill's cooldown still re-enters
 * shadow from the prior (M9). Real Redis, the estimator's Duties with a manual clock.
 */
import { ControlPlane, controlSetKill, defineEstimatorScripts, estimatorSetStage, ManualClock, parseKillHash, silentLogger } from '@gambit/shared';
import { classKeys, controlKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Duties } from '../../services/estimator/src/heartbeat.js';

const url = inject('redisUrl');
const redis = new Redis(url);
defineEstimatorScripts(redis);
afterAll(async () => {
  await redis.quit();
});

describe('kill expiry (estimator sweep)', () => {
  it('clears an expired operator kill without touching stage or posterior; keeps kills without expiry; drift cooldown still resets', async () => {
    const ks = { prefix: uniquePrefix('kill-expiry') };
    const clock = new ManualClock(1_000_000);
    const cp = new ControlPlane(redis, ks, clock, silentLogger, { pollMs: 50 });
    const duties = new Duties(redis, ks, clock, silentLogger, { estimatorId: 'e1', everyMs: 60_000, trimEveryMs: 0 });
    try {
      await cp.ready();
      for (const c of ['t1/w/a->b', 't1/w/c->d', 't1/w/e->f']) await cp.ensureClass(c, { depType: 'lookup', prior: { a: 3, b: 2 }, initialStage: 'online', tenant: 't1' });
      // Learned state the kill must not disturb.
      await redis.hset(classKeys(ks, 't1/w/a->b').posterior, 'a', '13', 'b', '4', 'hits', '10', 'misses', '2', 'n', '12');

      await cp.killClass('t1/w/a->b', 'timed', { owner: 'alice', untilMs: clock.nowMs() + 5_000 });
      await cp.killClass('t1/w/c->d', 'until revived', { owner: 'bob' });
      await cp.killTenant('t2', 'timed tenant', { owner: 'carol', untilMs: clock.nowMs() + 5_000 });
      // A drift kill, as the estimator's processor records it.
      await controlSetKill(redis, ks, { scope: 'class', id: 't1/w/e->f', reason: 'drift', nowMs: clock.nowMs(), untilMs: clock.nowMs() + 5_000, source: 'estimator', owner: 'estimator' });
      await estimatorSetStage(redis, ks, { classId: 't1/w/e->f', expected: '*', to: 'killed', reason: 'drift', nowMs: clock.nowMs(), killedUntilMs: clock.nowMs() + 5_000 });

      const stored = parseKillHash(await redis.hgetall(controlKeys(ks).kill));
      expect(stored.classes['t1/w/a->b']).toMatchObject({ owner: 'alice', source: 'operator', untilMs: 1_005_000 });
      expect(stored.classes['t1/w/c->d']?.untilMs).toBeUndefined();
      expect(cp.speculationBlocked('t1', 't1/w/a->b')).toEqual({ blocked: true, scope: 'class' });

      expect(await duties.sweep()).toBe(0);
      clock.advance(5_000);
      // Expired entries stop blocking at once on every scheduler, before the sweep runs (no
      // estimator beats in this test, so what is left is the heartbeat verdict).
      expect(cp.speculationBlocked('t1', 't1/w/a->b')).toEqual({ blocked: true, scope: 'heartbeat' });
      expect(cp.speculationBlocked('t2', 'x')).toEqual({ blocked: true, scope: 'heartbeat' });
      expect(cp.speculationBlocked('t1', 't1/w/c->d')).toEqual({ blocked: true, scope: 'class' });

      expect(await duties.sweep()).toBe(3);
      const after = parseKillHash(await redis.hgetall(controlKeys(ks).kill));
      expect(Object.keys(after.classes)).toEqual(['t1/w/c->d']);
      expect(after.tenants).toEqual({});
      expect(await cp.classState('t1/w/a->b', { fresh: true })).toMatchObject({ stage: 'online', a: 13, b: 4, hits: 10, misses: 2, n: 12 });
      expect(await cp.classState('t1/w/c->d', { fresh: true })).toMatchObject({ stage: 'online', a: 3, b: 2 });
      expect(await cp.classState('t1/w/e->f', { fresh: true })).toMatchObject({ stage: 'shadow', stageReason: 'cooldown elapsed: re-entering shadow' });

      // An operator revive leaves the class as it was.
      await cp.revive({ scope: 'class', classId: 't1/w/c->d' }, 'done');
      expect(await cp.classState('t1/w/c->d', { fresh: true })).toMatchObject({ stage: 'online', a: 3, b: 2 });
    } finally {
      await duties.stop();
      await cp.close();
    }
  });
});
