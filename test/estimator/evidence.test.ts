/**
 * M5 (docs/method.md): an outcome with `evidence: false` (a speculation launched on an upstream
 * output the stream had settled) carries value and no evidence. The estimator's processor,
 * through its Lua script on a real redis-server, books its seconds saved, waste and fencing in the
 * stage's value counters and leaves the posterior, the drift window and Page-Hinkley alone; a
 * shadow outcome that claims no evidence is refused, naming the field; ids stay idempotent.
 */
import { controlEnsureClass, defineEstimatorScripts, ManualClock, type Outcome, silentLogger } from '@gambit/shared';
import { classKeys, controlKeys } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { OutcomeProcessor, scriptKind } from '../../services/estimator/src/processor.js';
import { TenantConfigs } from '../../services/estimator/src/tenant-config.js';

const redis = new Redis(inject('redisUrl'));
defineEstimatorScripts(redis);
afterAll(async () => {
  await redis.quit();
});

const CLASS = 't1/w/u->d';

function outcome(id: string, kind: Outcome['kind'], extra: Partial<Outcome> = {}): Outcome {
  return { outcomeId: id, decisionId: `d-${id}`, tenant: 't1', workflow: 'w', runId: 'r', edgeClass: CLASS, kind, wasteUsd: 0, secondsSaved: 0, fencingViolation: false, atMs: 1, ...extra };
}

describe('M5: outcomes that carry value and no evidence', () => {
  it('maps a no-evidence outcome to the script\'s value-only kind', () => {
    expect(scriptKind({ kind: 'hit', evidence: false })).toBe('cancelled');
    expect(scriptKind({ kind: 'miss', evidence: false })).toBe('cancelled');
    expect(scriptKind({ kind: 'hit' })).toBe('hit');
    expect(scriptKind({ kind: 'shadow_miss', evidence: true })).toBe('shadow_miss');
  });

  it('books seconds saved and waste of no-evidence outcomes without moving the posterior or the window', async () => {
    const ks = { prefix: uniquePrefix('evidence') };
    const clock = new ManualClock(1_000_000);
    await controlEnsureClass(redis, ks, { classId: CLASS, prior: { a: 1, b: 1 }, depType: 'router_k_way', k: 2, initialStage: 'online', nowMs: clock.nowMs(), tenant: 't1' });
    const tenants = new TenantConfigs(redis, ks, clock, silentLogger, { defaultLambdaUsdPerSec: 0.01, cacheMs: 0 });
    const p = new OutcomeProcessor(redis, ks, clock, silentLogger, tenants, { estimatorId: 'e1', autoGlobal: { classCount: 100, windowMs: 60_000 }, fallbackPrior: { a: 1, b: 1 } });
    const sent = [
      outcome('o1', 'hit', { evidence: false, secondsSaved: 1.5 }),
      outcome('o2', 'miss', { evidence: false, wasteUsd: 0.000002 }),
      outcome('o3', 'cancelled', { evidence: false, wasteUsd: 0.000001, fencingViolation: true }),
      outcome('o4', 'shadow_miss'),
      outcome('o5', 'hit', { secondsSaved: 0.25 }),
      // Refused: a shadow outcome is nothing but evidence.
      outcome('o6', 'shadow_hit', { evidence: false }),
    ];
    const entries = sent.map((o, i): [string, string[]] => [`${i + 1}-0`, ['outcome', JSON.stringify(o)]]);
    expect(await p.processBatch(entries)).toHaveLength(6);
    expect(p.counters).toMatchObject({ applied: 5, dead: 1 });
    const post = await redis.hgetall(classKeys(ks, CLASS).posterior);
    // Evidence: o4 (a miss) and o5 (a hit) only.
    expect({ hits: post.hits, misses: post.misses, a: post.a, b: post.b, stageN: post.stageN }).toEqual({ hits: '1', misses: '1', a: '2', b: '2', stageN: '2' });
    expect(await redis.lrange(classKeys(ks, CLASS).window, 0, -1)).toEqual(['0', '1']);
    // Value: every launched speculation's outcome, evidence or not (o1, o2, o3, o5).
    expect({ realN: post.stageRealN, savedMs: post.stageSavedMs, waste: post.stageWasteNanoUsd, fencing: post.stageFencing }).toEqual({ realN: '4', savedMs: '1750', waste: '3000', fencing: '1' });
    const dead = await redis.xrange(controlKeys(ks).outcomesDead, '-', '+');
    expect(dead).toHaveLength(1);
    expect(dead[0]?.[1][3]).toContain('outcome.evidence');
    // Idempotent by outcome id: a redelivery changes nothing.
    expect(await p.processBatch(entries.slice(0, 5))).toHaveLength(5);
    expect(p.counters).toMatchObject({ applied: 5, duplicates: 5 });
    expect(await redis.hgetall(classKeys(ks, CLASS).posterior)).toEqual(post);
  });
});
