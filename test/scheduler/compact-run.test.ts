/**
 * Issue 13 item 3: compactRun-8.lua folds an ended, settled run into its compact record, and
 * expandRunRecord reads it back, against a real redis-server. What the record keeps must read back
 * exactly (states, epochs, timings, usage, costs, closed speculations, decisions, outcomes; and
 * outputs, guesses and effects when the tenant keeps them); everything else of the run is deleted
 * in the same step; the fold is refused while anything is unsettled (issue 11 D1).
 */
import type { AttemptRecord } from '@gambit/shared';
import {
  compactRun,
  defineAttemptScripts,
  defineRunScripts,
  expandRunRecord,
  finishAttempt,
  type KeySpace,
  type NodeState,
  parseNodes,
  readRun,
  runKeys,
} from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';

const redis = new Redis(inject('redisUrl'));
defineRunScripts(redis);
defineAttemptScripts(redis);
afterAll(async () => {
  await redis.quit();
});

const tenant = 't1';
const created = 1_796_000_000_000;
let ks: KeySpace;
let runId: string;
let seq = 0;

const node = (over: Partial<NodeState>): NodeState => ({ state: 'succeeded', epoch: 1, closed: {}, claims: {}, outs: {}, ...over });

function attempt(over: Partial<AttemptRecord> & Pick<AttemptRecord, 'attemptId' | 'nodeId'>): AttemptRecord {
  return {
    kind: 'authoritative',
    epoch: 1,
    status: 'succeeded',
    assumed: {},
    costNanoUsd: 1_000,
    createdAtMs: created + 10,
    startedAtMs: created + 20,
    finishedAtMs: created + 900,
    tries: 1,
    billedTries: [1],
    workerId: 'w1',
    usage: { inputTokens: 30, cachedInputTokens: 4, outputTokens: 7 },
    usageEstimated: false,
    ...over,
  };
}

/** A settled, ended run: a router that missed its guess, a speculation on it (closed: miss), and the authoritative re-run. */
async function seedRun(): Promise<{ nodes: Record<string, NodeState>; attempts: AttemptRecord[]; decisions: string[]; outcomes: string[]; effects: string[] }> {
  const k = runKeys(ks, tenant, runId);
  const outcomeId = `${runId}:answer.s2:route`;
  const nodes: Record<string, NodeState> = {
    route: node({ auth: 'route.a1', output: 'billing', source: 'authoritative', startedAtMs: created + 5, finishedAtMs: created + 700 }),
    answer: node({
      epoch: 3,
      auth: 'answer.a3',
      output: 'answer for billing',
      source: 'authoritative',
      startedAtMs: created + 710,
      finishedAtMs: created + 1500,
      closed: { 'answer.s2': { kind: 'miss', d: `${runId}:answer:runtime`, res: 5_000, cls: 'route=t1/wf/route->answer', at: created + 50, edge: 'route', ok: {} } },
      claims: { runtime: 1 },
      outs: { [outcomeId]: 1 },
    }),
    // What the v 2 record's defaults must not swallow: a node with no auth and no source, and one
    // whose output came from a kept speculation (source 'speculative', auth not '<node>.a1').
    skipped: node({ state: 'cancelled', epoch: 0 }),
    tail: node({ auth: 'tail.s1', output: 'kept guess', source: 'speculative', startedAtMs: created + 30, finishedAtMs: created + 600 }),
  };
  const attempts = [
    attempt({ attemptId: 'route.a1', nodeId: 'route', output: 'billing' }),
    attempt({
      attemptId: 'answer.s2',
      nodeId: 'answer',
      kind: 'speculative',
      epoch: 2,
      status: 'cancelled',
      assumed: { route: 'technical' },
      decisionId: `${runId}:answer:runtime`,
      output: 'answer for technical',
      costNanoUsd: 2_345,
      usageEstimated: true,
      error: 'speculation miss',
      reservationId: 'res1',
    }),
    attempt({ attemptId: 'answer.a3', nodeId: 'answer', epoch: 3, output: 'answer for billing', costNanoUsd: 3_000, usage: { inputTokens: 40, cachedInputTokens: 0, cacheWriteTokens: 3, outputTokens: 9 } }),
    attempt({ attemptId: 'tail.s1', nodeId: 'tail', kind: 'speculative', output: 'kept guess', decisionId: `${runId}:tail:runtime` }),
  ];
  const decisions = [
    JSON.stringify({ decisionId: `${runId}:answer:plan`, phase: 'plan', p: 0.123456789012345, cSpecUsd: 1.5e-7 }),
    JSON.stringify({ decisionId: `${runId}:answer:runtime`, phase: 'runtime', p: 0.5 }),
  ];
  const outcomes = [JSON.stringify({ outcomeId, kind: 'miss', wasteUsd: 0.000002345 })];
  const effects = [JSON.stringify({ type: 'message', body: 'your billing case is open' })];
  await redis.hset(k.run, {
    tenant,
    runId,
    workflowName: 'wf',
    workflowRef: 'f'.repeat(32),
    inputs: JSON.stringify({ q: 'a question long enough to push the hash out of its small encoding in Redis, surely' }),
    trace: JSON.stringify({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` }),
    // The trace context as headers write it since issue 13 item 3 (one field per carrier entry).
    'trace:traceparent': `00-${'a'.repeat(32)}-${'c'.repeat(16)}-01`,
    status: 'succeeded',
    speculation: '1',
    createdAtMs: String(created),
    finishedAtMs: String(created + 1500),
    costNanoUsd: '6345',
    specCostNanoUsd: '2345',
  });
  for (const [id, n] of Object.entries(nodes)) await redis.hset(k.nodes, id, JSON.stringify(n));
  for (const a of attempts) await redis.hset(k.attempts, a.attemptId, JSON.stringify(a));
  await redis.rpush(k.decisions, ...decisions);
  await redis.rpush(k.outcomes, ...outcomes);
  await redis.rpush(k.effects, ...effects);
  await redis.rpush(k.staging('answer.s2'), JSON.stringify({ type: 'message', body: 'left behind' }));
  await redis.pexpire(k.run, 60_000);
  return { nodes, attempts, decisions, outcomes, effects };
}

const due = (): Array<[string, string]> => [['answer', `${runId}:answer.s2:route`]];

describe('compactRun-8.lua (issue 13 item 3)', () => {
  beforeEach(() => {
    ks = { prefix: uniquePrefix('compact') };
    runId = `r${++seq}`;
  });

  it('keeps, with outputs on, every field the readers use, exactly, and deletes the rest of the run in the same step', async () => {
    const seeded = await seedRun();
    const k = runKeys(ks, tenant, runId);
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: true, dueOutcomes: due() })).toBe('compacted');
    expect(await redis.exists(k.nodes, k.attempts, k.decisions, k.outcomes, k.effects, k.intents, k.staging('answer.s2'))).toBe(0);
    const h = await redis.hgetall(k.run);
    expect(h).toMatchObject({ status: 'succeeded', costNanoUsd: '6345', specCostNanoUsd: '2345', createdAtMs: String(created), compact: '1' });
    expect(h.inputs).toBe(JSON.stringify({ q: 'a question long enough to push the hash out of its small encoding in Redis, surely' }));
    expect(h.trace).toBeUndefined();
    expect(h['trace:traceparent']).toBeUndefined();
    const ttlRun = await redis.pttl(k.run);
    const ttlRec = await redis.pttl(k.rec);
    expect(ttlRun).toBeGreaterThan(50_000);
    expect(ttlRec).toBeGreaterThan(50_000);
    expect(Math.abs(ttlRun - ttlRec)).toBeLessThan(5_000);

    const r = await readRun(redis, ks, { tenant, runId });
    expect(r.record).toBeDefined();
    const x = expandRunRecord(r.record as string, created);
    expect(x.outputsKept).toBe(true);
    expect(x.decisions).toEqual(seeded.decisions);
    expect(x.outcomes).toEqual(seeded.outcomes);
    expect(x.effects).toEqual(seeded.effects);
    const live = parseNodes(Object.fromEntries(Object.entries(seeded.nodes).map(([id, n]) => [id, JSON.stringify(n)])));
    for (const [id, n] of live) expect(x.nodes.get(id)).toEqual({ ...n, claims: {}, outs: {} });
    expect(x.attempts.size).toBe(seeded.attempts.length);
    for (const a of seeded.attempts) {
      const { billedTries: _b, reservationId: _r, ...kept } = a;
      expect(x.attempts.get(a.attemptId)).toEqual(kept);
    }
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: true, dueOutcomes: due() })).toBe('already');
  });

  it('keeps no inputs, outputs, guesses or effects with outputs off, and its run hash is stored small', async () => {
    const seeded = await seedRun();
    const k = runKeys(ks, tenant, runId);
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('compacted');
    const h = await redis.hgetall(k.run);
    expect(h.inputs).toBeUndefined();
    expect(await redis.object('ENCODING', k.run)).toBe('listpack');
    const rec = (await redis.get(k.rec)) as string;
    for (const text of ['billing', 'technical', 'your billing case', 'question']) expect(rec).not.toContain(text);
    const x = expandRunRecord(rec, created);
    expect(x.outputsKept).toBe(false);
    expect(x.effects).toEqual([]);
    expect(x.effectCount).toBe(1);
    expect(x.decisions).toEqual(seeded.decisions);
    for (const n of x.nodes.values()) expect(n.output).toBeUndefined();
    for (const a of x.attempts.values()) {
      expect(a.output).toBeUndefined();
      expect(a.assumed).toEqual({});
    }
    expect(x.attempts.get('answer.s2')).toMatchObject({ status: 'cancelled', costNanoUsd: 2_345, usageEstimated: true, finishedAtMs: created + 900, error: 'speculation miss' });
    expect(x.nodes.get('answer')?.closed['answer.s2']?.kind).toBe('miss');
  });

  it('is refused while the run runs, an attempt is unsettled, the outbox holds an intent or a due outcome is not recorded', async () => {
    const k = runKeys(ks, tenant, runId);
    await seedRun();
    await redis.hset(k.run, 'status', 'running');
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('missing_or_running');
    await redis.hset(k.run, 'status', 'cancelled');
    // A fenced attempt that started and was never billed (its worker may still report): D1.
    const unbilled = attempt({ attemptId: 'answer.s4', nodeId: 'answer', kind: 'speculative', epoch: 4, status: 'cancelled', finishedAtMs: undefined });
    await redis.hset(k.attempts, unbilled.attemptId, JSON.stringify(unbilled));
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('unsettled');
    for (const status of ['queued', 'running', 'needs_attention'] as const) {
      await redis.hset(k.attempts, unbilled.attemptId, JSON.stringify({ ...unbilled, status }));
      expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('unsettled');
    }
    await redis.hset(k.attempts, unbilled.attemptId, JSON.stringify({ ...unbilled, finishedAtMs: created + 2000 }));
    await redis.hset(k.intents, 'job1', '{}');
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('unsettled');
    await redis.del(k.intents);
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: [...due(), ['route', `${runId}:shadow:x:route`]] })).toBe('outcome_unrecorded');
    expect(await redis.exists(k.nodes, k.attempts, k.decisions)).toBe(3);
    expect(await redis.exists(k.rec)).toBe(0);
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('compacted');
  });

  it('a worker that reports after the fold is told MISSING and writes nothing (no key comes back)', async () => {
    await seedRun();
    const k = runKeys(ks, tenant, runId);
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('compacted');
    const before = await redis.hgetall(k.run);
    const r = await finishAttempt(redis, ks, {
      tenant,
      runId,
      attemptId: 'answer.s2',
      epoch: 2,
      tryNo: 1,
      outcome: 'ok',
      output: 'late',
      usage: { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1 },
      usageEstimated: false,
      costNanoUsd: 10,
      finishedAtMs: created + 5_000,
    });
    expect(r.code).toBe('MISSING');
    expect(await redis.exists(k.attempts)).toBe(0);
    expect(await redis.hgetall(k.run)).toEqual(before);
  });

  it('reads a v 1 record (written before the v 2 defaults) exactly as before, and refuses one missing what v 1 requires', () => {
    const v1 = JSON.stringify({
      v: 1,
      n: {
        a: { s: 'succeeded', e: 1, au: 'a.a1', src: 'authoritative', t0: 5, t1: 700, a: { 'a.a1': { k: 'authoritative', e: 1, s: 'succeeded', c: 1000, t: 10, t0: 20, t1: 900, n: 1, w: 'w1' } } },
        b: { s: 'cancelled', e: 0, a: {} },
      },
      d: [],
      o: [],
      xn: 0,
    });
    const x = expandRunRecord(v1, created);
    expect(x.nodes.get('a')).toMatchObject({ state: 'succeeded', epoch: 1, auth: 'a.a1', source: 'authoritative' });
    // v 1: a missing auth or source means none (v 2 would read them as the defaults).
    expect(x.nodes.get('b')?.auth).toBeUndefined();
    expect(x.nodes.get('b')?.source).toBeUndefined();
    expect(x.attempts.get('a.a1')).toMatchObject({ kind: 'authoritative', epoch: 1, status: 'succeeded', workerId: 'w1' });
    const noKind = v1.replace('"k":"authoritative",', '');
    expect(() => expandRunRecord(noKind, created, 'run t/r')).toThrow(/run t\/r: invalid compact record: n\.a\.a\.a\.a1: k, e and s are required in a v 1 record/);
    expect(() => expandRunRecord(v1.replace('"s":"cancelled",', ''), created, 'run t/r')).toThrow(/n\.b\.s: missing/);
  });

  it('writes v 2: the common values are left out of the record (issue 13 item 3: bytes per ended run)', async () => {
    await seedRun();
    const k = runKeys(ks, tenant, runId);
    expect(await compactRun(redis, ks, { tenant, runId, keepOutputs: false, dueOutcomes: due() })).toBe('compacted');
    const rec = JSON.parse((await redis.get(k.rec)) as string);
    expect(rec.v).toBe(2);
    expect(rec.n.route).toEqual({ e: 1, t0: 5, t1: 700, a: { 'route.a1': { c: 1_000, t: 10, t0: 20, t1: 900, n: 1, w: 'w1', u: [30, 4, 7] } } });
    expect(rec.n.skipped).toEqual({ s: 'cancelled', e: 0, au: false, src: false, a: {} });
    expect(rec.n.tail).toMatchObject({ au: 'tail.s1', src: 'speculative' });
    expect(rec.n.answer.a['answer.s2']).toMatchObject({ k: 'speculative', e: 2, s: 'cancelled' });
    expect(rec.n.answer.a['answer.a3'].e).toBeUndefined();
  });
});
