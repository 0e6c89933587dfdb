/**
 * The scheduler's run-state Lua scripts against a real redis-server (M6 fencing, M8 runtime
 * mechanics, M10 budgets), together with the worker's attempt scripts where they meet.
 */
import { type AttemptRecord, parseWorkflow } from '@gambit/shared';
import {
  admissionKeys,
  bookLateRunSpend,
  cancelGuess,
  cancelRun,
  closeReservation,
  completeNode,
  confirmSpeculation,
  createGuessAttempt,
  createRun,
  createSpecAttempt,
  decodeAttempt,
  defineAttemptScripts,
  defineRunScripts,
  discardSpeculation,
  finishAttempt,
  finishRun,
  holdSpend,
  indexEndedRun,
  initialNodeState,
  type KeySpace,
  launchNode,
  markAttention,
  parseNodes,
  recordDecision,
  recordOutcome,
  reserveBudget,
  resolveAttention,
  runKeys,
  settleBudget,
  settleEndedRun,
  spendPeriodField,
  stageEffects,
  startAttempt,
  tenantKeys,
} from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { loadRun, newRunSnapshot, workflowDefRef } from '../../services/scheduler/src/engine/run-view.js';

const redis = new Redis(inject('redisUrl'));
defineRunScripts(redis);
defineAttemptScripts(redis);
afterAll(async () => {
  await redis.quit();
});

const tenant = 't1';
let ks: KeySpace;
let runId: string;

function attempt(id: string, nodeId: string, kind: 'authoritative' | 'speculative', epoch: number, assumed: Record<string, string> = {}): AttemptRecord {
  return { attemptId: id, nodeId, kind, epoch, status: 'queued', assumed, costNanoUsd: 0, createdAtMs: 1, tries: 0 };
}

async function nodes() {
  // A succeeded node's output is read from its auth attempt (issue 13 item 3, `oa`).
  const attempts = await redis.hgetall(runKeys(ks, tenant, runId).attempts);
  return parseNodes(await redis.hgetall(runKeys(ks, tenant, runId).nodes), (id) => (attempts[id] === undefined ? undefined : decodeAttempt(attempts[id], id).output));
}

/** `key`: the launch call's own key in its intent (the engine's spend hold key): a new one per call unless given. */
async function launch(nodeId: string, expectedEpoch: number, key = Math.random().toString(36).slice(2)) {
  const id = `${nodeId}.a${expectedEpoch + 1}`;
  return launchNode(redis, ks, {
    tenant,
    runId,
    nodeId,
    expectedEpoch,
    attemptId: id,
    attemptJson: JSON.stringify(attempt(id, nodeId, 'authoritative', expectedEpoch + 1)),
    jobId: `job-${id}`,
    intentJson: JSON.stringify({ k: key }),
    nowMs: 10,
  });
}

async function speculate(nodeId: string, expectedEpoch: number, assumed: Record<string, string>, claim = 'runtime', st?: Record<string, number>) {
  const id = `${nodeId}.s${expectedEpoch + 1}`;
  const r = await createSpecAttempt(redis, ks, {
    tenant,
    runId,
    nodeId,
    expectedEpoch,
    claim,
    attemptId: id,
    attemptJson: JSON.stringify(attempt(id, nodeId, 'speculative', expectedEpoch + 1, assumed)),
    jobId: `job-${id}`,
    intentJson: '{}',
    nowMs: 11,
    decisionJson: JSON.stringify({ decisionId: `d-${id}`, posteriors: [] }),
    spec: { a: id, d: `d-${id}`, assumed, ok: {}, res: 500, cls: Object.keys(assumed).map((u) => `${u}=c-${u}`).join(','), at: 11, ...(st === undefined ? {} : { st }) },
  });
  return { r, id };
}

/** Runs a try of an attempt through the worker's scripts and finishes it with `output`. */
async function work(attemptId: string, epoch: number, output: string, effects: Array<{ type: string; [k: string]: unknown }> = []) {
  const s = await startAttempt(redis, ks, { tenant, runId, attemptId, epoch, workerId: 'w1', nowMs: 20 });
  if (s.code !== 'OK') return { start: s.code, finish: undefined };
  if (effects.length > 0) await stageEffects(redis, ks, { tenant, runId, attemptId, epoch, tryNo: s.tries, effects });
  const f = await finishAttempt(redis, ks, {
    tenant,
    runId,
    attemptId,
    epoch,
    tryNo: s.tries,
    outcome: 'ok',
    output,
    usage: { inputTokens: 10, cachedInputTokens: 0, outputTokens: 5 },
    usageEstimated: false,
    costNanoUsd: 1234,
    finishedAtMs: 30,
  });
  return { start: s.code, finish: f.code };
}

beforeEach(async () => {
  ks = { prefix: uniquePrefix('runscripts') };
  runId = `r${Math.random().toString(36).slice(2, 8)}`;
  const created = await createRun(redis, ks, {
    tenant,
    runId,
    header: { tenant, runId, status: 'running', workflow: '{}' },
    nodes: { a: initialNodeState(), b: initialNodeState(), c: initialNodeState() },
    planDecisions: [{ decisionId: 'p1', posteriors: [] }],
  });
  expect(created).toBe(true);
});

describe('run scripts (M6, M8)', () => {
  it('createRun is idempotent and stores plan decisions verbatim (empty arrays stay arrays)', async () => {
    const again = await createRun(redis, ks, { tenant, runId, header: { status: 'x' }, nodes: {}, planDecisions: [] });
    expect(again).toBe(false);
    expect(await redis.hget(runKeys(ks, tenant, runId).run, 'status')).toBe('running');
    expect(await redis.lrange(runKeys(ks, tenant, runId).decisions, 0, -1)).toEqual(['{"decisionId":"p1","posteriors":[]}']);
  });

  it('createRun writes every field, node and decision of a large run (each call sliced under Lua\'s argument limit), as the submit\'s snapshot of it says', async () => {
    const big = `${runId}-big`;
    const wf = parseWorkflow({ name: 'big', nodes: [{ id: 'n0', kind: 'tool', tool: 'grep', effects: 'none' }], edges: [] });
    const workflowJson = JSON.stringify(wf);
    const workflowRef = workflowDefRef(workflowJson);
    await redis.hset(tenantKeys(ks, tenant).workflowDefs, workflowRef, workflowJson);
    // 1,203 nodes (2,406 HSET arguments) and 1,105 plan decisions: three and two slices.
    const nodes = Object.fromEntries(Array.from({ length: 1_203 }, (_, i) => [`n${i}`, initialNodeState()]));
    const planDecisions = Array.from({ length: 1_105 }, (_, i) => ({ decisionId: `p${i}`, posteriors: [] }));
    // Numbers as the scheduler sends them: a fractional clock, a float dial.
    const header = { tenant, runId: big, workflowName: 'big', workflowRef, inputs: '{"q":1}', status: 'running', speculation: 1, createdAtMs: 1796629055902.123, alpha: 0.1 + 0.2, opTimeoutMs: 60_000 };
    expect(await createRun(redis, ks, { tenant, runId: big, header, nodes, planDecisions })).toBe(true);
    const k = runKeys(ks, tenant, big);
    expect(await redis.hlen(k.run)).toBe(Object.keys(header).length);
    expect(await redis.hlen(k.nodes)).toBe(1_203);
    expect(await redis.llen(k.decisions)).toBe(1_105);
    expect(await redis.lindex(k.decisions, 1_104)).toBe('{"decisionId":"p1104","posteriors":[]}');
    // The submit's first reconcile starts from newRunSnapshot instead of reading this back.
    const read = await loadRun(redis, ks, tenant, big);
    const made = newRunSnapshot({ header, workflowRef, workflowJson, nodes });
    expect(made.header).toEqual(read?.header);
    expect(made.nodes).toEqual(read?.nodes);
    expect(made.attempts).toEqual(read?.attempts);
    expect(made.workflow).toEqual(read?.workflow);
  });

  it('launchNode twice -> one attempt; concurrent launches -> exactly one wins', async () => {
    expect(await launch('a', 0)).toEqual({ ok: true, epoch: 1 });
    expect(await launch('a', 0)).toEqual({ ok: false, reason: 'state' });
    const both = await Promise.all([launch('b', 0), launch('b', 0), launch('b', 0)]);
    expect(both.filter((r) => r.ok)).toHaveLength(1);
    const k = runKeys(ks, tenant, runId);
    expect(Object.keys(await redis.hgetall(k.attempts)).sort()).toEqual(['a.a1', 'b.a1']);
    expect(Object.keys(await redis.hgetall(k.intents)).sort()).toEqual(['job-a.a1', 'job-b.a1']);
  });

  it('completeNode accepts only the current authoritative attempt, and only once', async () => {
    await launch('a', 0);
    expect((await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 40 })).code).toBe('fenced');
    await work('a.a1', 1, 'out-a');
    expect(await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 40 })).toEqual({ code: 'completed', state: 'succeeded' });
    expect(await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 41 })).toEqual({ code: 'duplicate', state: 'succeeded' });
    expect((await nodes()).get('a')).toMatchObject({ state: 'succeeded', output: 'out-a', source: 'authoritative' });
  });

  it('a late result of a cancelled speculative attempt is rejected and its staged effects never released', async () => {
    await launch('a', 0);
    const { r, id } = await speculate('b', 0, { a: 'guess' });
    expect(r).toEqual({ ok: true, epoch: 1 });
    // The worker starts the attempt and stages an effect; then the guess turns out wrong.
    const s = await startAttempt(redis, ks, { tenant, runId, attemptId: id, epoch: 1, workerId: 'w1', nowMs: 20 });
    expect(s.code).toBe('OK');
    await stageEffects(redis, ks, { tenant, runId, attemptId: id, epoch: 1, tryNo: 1, effects: [{ type: 'message', body: 'wrong' }] });
    expect(await discardSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: id, kind: 'miss', edge: 'a', nowMs: 25 })).toEqual({
      discarded: true,
      previousStatus: 'running',
    });
    // The late result arrives: billed, not accepted.
    const late = await finishAttempt(redis, ks, {
      tenant,
      runId,
      attemptId: id,
      epoch: 1,
      tryNo: 1,
      outcome: 'ok',
      output: 'late',
      usage: { inputTokens: 3, cachedInputTokens: 0, outputTokens: 2 },
      usageEstimated: true,
      costNanoUsd: 99,
      finishedAtMs: 50,
    });
    expect(late.code).toBe('FENCED');
    expect((await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: id, upstreamId: 'a', nowMs: 51 })).code).toBe('not_live');
    expect((await completeNode(redis, ks, { tenant, runId, nodeId: 'b', attemptId: id, nowMs: 52 })).code).toBe('fenced');
    const k = runKeys(ks, tenant, runId);
    expect(await redis.exists(k.staging(id))).toBe(0);
    expect(await redis.llen(k.effects)).toBe(0);
    const rec = decodeAttempt((await redis.hget(k.attempts, id)) ?? '{}', id);
    expect(rec).toMatchObject({ status: 'cancelled', costNanoUsd: 99, finishedAtMs: 50 });
    expect(rec.output).toBeUndefined();
    const b = (await nodes()).get('b');
    expect(b?.state).toBe('pending');
    expect(b?.spec).toBeUndefined();
    expect(b?.closed[id]).toMatchObject({ kind: 'miss', edge: 'a', res: 500 });
    // The node now runs for real on the real input, under a newer epoch.
    expect(await launch('b', 1)).toEqual({ ok: true, epoch: 2 });
  });

  it('a confirmed speculation completes the node and releases its staged effects exactly once', async () => {
    await launch('a', 0);
    await launch('b', 0);
    const { id } = await speculate('c', 0, { a: 'x', b: 'y' });
    await work(id, 1, 'out-c', [{ type: 'message', body: 'hello' }]);
    // Only one upstream matched so far: nothing is released.
    expect((await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'c', attemptId: id, upstreamId: 'a', nowMs: 60 })).code).toBe('partial');
    expect(await launch('c', 1)).toEqual({ ok: false, reason: 'spec' });
    const k = runKeys(ks, tenant, runId);
    expect(await redis.llen(k.effects)).toBe(0);
    const done = await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'c', attemptId: id, upstreamId: 'b', nowMs: 61 });
    expect(done).toMatchObject({ code: 'completed', releasedEffects: 1 });
    expect(await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'c', attemptId: id, upstreamId: 'b', nowMs: 62 })).toEqual({ code: 'not_live' });
    expect(await redis.lrange(k.effects, 0, -1)).toEqual(['{"type":"message","body":"hello"}']);
    expect((await nodes()).get('c')).toMatchObject({ state: 'succeeded', output: 'out-c', source: 'speculative', auth: id });
    // The reply carries the node as written (the engine's snapshot takes it instead of a re-read).
    expect(done.code === 'completed' && done.node).toEqual((await nodes()).get('c'));
  });

  it('a fully confirmed speculation still running waits for its attempt', async () => {
    await launch('a', 0);
    const { id } = await speculate('b', 0, { a: 'x' });
    expect((await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: id, upstreamId: 'a', nowMs: 60 })).code).toBe('waiting');
    await work(id, 1, 'out-b');
    expect((await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: id, nowMs: 70 })).code).toBe('completed');
  });

  it('discard onlyIfQueued drops a speculation that never started, and leaves a running one alone', async () => {
    await launch('a', 0);
    const { id } = await speculate('b', 0, { a: 'x' });
    await startAttempt(redis, ks, { tenant, runId, attemptId: id, epoch: 1, workerId: 'w', nowMs: 20 });
    expect(await discardSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: id, kind: 'cancelled', nowMs: 30, onlyIfQueued: true })).toEqual({ discarded: false });
    expect((await nodes()).get('b')?.spec?.a).toBe(id);
    const q = await speculate('c', 0, { a: 'y' });
    expect(q.r.ok).toBe(true);
    expect(await discardSpeculation(redis, ks, { tenant, runId, nodeId: 'c', attemptId: q.id, kind: 'cancelled', nowMs: 31, onlyIfQueued: true })).toEqual({ discarded: true, previousStatus: 'queued' });
    // Never started, so it is finished (nothing spent) and its worker would be fenced.
    const rec = decodeAttempt((await redis.hget(runKeys(ks, tenant, runId).attempts, q.id)) ?? '{}', q.id);
    expect(rec).toMatchObject({ status: 'cancelled', finishedAtMs: 31, costNanoUsd: 0 });
    expect((await startAttempt(redis, ks, { tenant, runId, attemptId: q.id, epoch: 1, workerId: 'w', nowMs: 32 })).code).toBe('FENCED');
  });

  it('createSpecAttempt is refused once the assumed upstream finished, and each claim decides once', async () => {
    await launch('a', 0);
    await work('a.a1', 1, 'real');
    await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 40 });
    expect((await speculate('b', 0, { a: 'guess' })).r).toEqual({ ok: false, reason: 'upstream' });
    const rec = { tenant, runId, nodeId: 'c', claim: 'runtime', decisionJson: '{"decisionId":"w","posteriors":[]}' };
    expect(await recordDecision(redis, ks, rec)).toBe(true);
    expect(await recordDecision(redis, ks, rec)).toBe(false);
    await launch('b', 0);
    expect((await speculate('c', 0, { b: 'g' }, 'runtime')).r).toEqual({ ok: false, reason: 'claimed' });
  });

  it('M8 a cascade is refused once the speculation it stands on has been discarded', async () => {
    await launch('a', 0);
    const b = await speculate('b', 0, { a: 'x' });
    expect(b.r.ok).toBe(true);
    const cascade = async () => {
      const id = 'c.s1';
      return createSpecAttempt(redis, ks, {
        tenant,
        runId,
        nodeId: 'c',
        expectedEpoch: 0,
        claim: 'runtime',
        attemptId: id,
        attemptJson: JSON.stringify(attempt(id, 'c', 'speculative', 1, { b: 'out-b' })),
        jobId: `job-${id}`,
        intentJson: '{}',
        nowMs: 12,
        decisionJson: '{}',
        spec: { a: id, d: 'dc', assumed: { b: 'out-b' }, ok: {}, res: 0, cls: 'b=c-b', at: 12, cas: 1, src: { b: b.id } },
      });
    };
    await discardSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: b.id, kind: 'miss', edge: 'a', nowMs: 13 });
    expect(await cascade()).toEqual({ ok: false, reason: 'upstream' });
    expect((await nodes()).get('c')?.claims.runtime).toBeUndefined();
  });

  it('M10 createGuessAttempt buys a guess once per edge, only while the upstream runs, and the worker runs it fenced', async () => {
    const buy = (claim = 'guess-a') =>
      createGuessAttempt(redis, ks, {
        tenant,
        runId,
        nodeId: 'b',
        upstreamId: 'a',
        claim,
        attemptId: 'b.g-a',
        attemptJson: JSON.stringify(attempt('b.g-a', 'b', 'speculative', 0)),
        jobId: 'job-b.g-a',
        intentJson: '{}',
        decisionJson: '{"decisionId":"buy","posteriors":[]}',
      });
    // The upstream is still pending: a guess of it would not be bought ahead of its launch.
    expect(await buy()).toBe(false);
    await launch('a', 0);
    expect(await buy()).toBe(true);
    expect(await buy()).toBe(false);
    expect(await buy('guess-a-other')).toBe(false);
    const k = runKeys(ks, tenant, runId);
    expect((await nodes()).get('b')?.claims).toEqual({ 'guess-a': 1 });
    expect(await redis.hexists(k.intents, 'job-b.g-a')).toBe(1);
    expect(await redis.lrange(k.decisions, -1, -1)).toEqual(['{"decisionId":"buy","posteriors":[]}']);
    // The node's own state is untouched: no epoch bump, no speculation.
    expect((await nodes()).get('b')).toMatchObject({ state: 'pending', epoch: 0 });
    expect(await work('b.g-a', 0, 'guess')).toEqual({ start: 'OK', finish: 'OK' });
    await work('a.a1', 1, 'real');
    await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 40 });
    await redis.hdel(k.attempts, 'b.g-a');
    expect(await buy('guess-a-late')).toBe(false);
  });

  it('recordOutcome records an outcome id once', async () => {
    const o = { tenant, runId, nodeId: 'a', outcomeId: 'o1', outcomeJson: '{"kind":"hit"}' };
    expect(await recordOutcome(redis, ks, o)).toBe(true);
    expect(await recordOutcome(redis, ks, o)).toBe(false);
    expect(await redis.llen(runKeys(ks, tenant, runId).outcomes)).toBe(1);
  });

  it('cancelRun fences every unfinished attempt and reports the running ones', async () => {
    await launch('a', 0);
    await launch('b', 0);
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, workerId: 'w', nowMs: 5 });
    const { id } = await speculate('c', 0, { a: 'x' });
    const r = await cancelRun(redis, ks, { tenant, runId, status: 'cancelled', reason: 'user', nowMs: 99 });
    expect(r.ended).toBe(true);
    expect(r.runningAttempts).toEqual(['a.a1']);
    expect((await cancelRun(redis, ks, { tenant, runId, status: 'cancelled', reason: 'again', nowMs: 100 })).ended).toBe(false);
    const all = await nodes();
    expect([...all.values()].every((n) => n.state === 'cancelled')).toBe(true);
    expect(all.get('c')?.closed[id]?.kind).toBe('cancelled');
    expect((await startAttempt(redis, ks, { tenant, runId, attemptId: 'b.a1', epoch: 1, workerId: 'w', nowMs: 101 })).code).toBe('FENCED');
    expect(await launch('b', 1)).toEqual({ ok: false, reason: 'run' });
  });
});

describe('M5/M8: the upstreams a stream settled stay marked when a speculation closes', () => {
  it('discardSpeculation, confirmSpeculation and cancelRun keep `st` on the closed speculation', async () => {
    await launch('a', 0);
    const b = await speculate('b', 0, { a: 'x' }, 'stream', { a: 1 });
    const c = await speculate('c', 0, { a: 'x' }, 'stream', { a: 1 });
    expect(b.r.ok && c.r.ok).toBe(true);
    expect((await nodes()).get('b')?.spec?.st).toEqual({ a: 1 });
    await discardSpeculation(redis, ks, { tenant, runId, nodeId: 'b', attemptId: b.id, kind: 'miss', edge: 'a', nowMs: 20 });
    expect((await nodes()).get('b')?.closed[b.id]).toMatchObject({ kind: 'miss', edge: 'a', st: { a: 1 } });
    // c: confirmed on a, its attempt succeeded: a hit, still marked.
    expect((await work(c.id, 1, 'y')).finish).toBe('OK');
    expect((await confirmSpeculation(redis, ks, { tenant, runId, nodeId: 'c', attemptId: c.id, upstreamId: 'a', nowMs: 40 })).code).toBe('completed');
    expect((await nodes()).get('c')?.closed[c.id]).toMatchObject({ kind: 'hit', st: { a: 1 } });
    // b again, on the stream, then the run is cancelled: the cancel keeps the mark too.
    const b2 = await speculate('b', 1, { a: 'x' }, 'stream2', { a: 1 });
    expect(b2.r.ok).toBe(true);
    await cancelRun(redis, ks, { tenant, runId, status: 'cancelled', reason: 'user', nowMs: 50 });
    expect((await nodes()).get('b')?.closed[b2.id]).toMatchObject({ kind: 'cancelled', st: { a: 1 } });
  });
});

describe('budget scripts (M10)', () => {
  it('reserves within the limit and settles each reservation once', async () => {
    const t = `bt-${runId}`;
    const ref = { tenant: t, limitNanoUsd: 1000 };
    expect(await reserveBudget(redis, ks, { ...ref, amountNanoUsd: 600 })).toBe(true);
    expect(await reserveBudget(redis, ks, { ...ref, amountNanoUsd: 600 })).toBe(false);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r1', settlementId: 's1', reservedNanoUsd: 600, wasteNanoUsd: 250 })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r1', settlementId: 's1', reservedNanoUsd: 600, wasteNanoUsd: 250 })).toBe(false);
    expect(await redis.hmget(tenantKeys(ks, t).budget, 'reservedNanoUsd', 'spentNanoUsd')).toEqual(['0', '250']);
    // Spent waste counts against the limit; zero amounts settle cleanly.
    expect(await reserveBudget(redis, ks, { ...ref, amountNanoUsd: 800 })).toBe(false);
    expect(await reserveBudget(redis, ks, { ...ref, amountNanoUsd: 0 })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r1', settlementId: 's2', reservedNanoUsd: 0, wasteNanoUsd: 0 })).toBe(true);
    expect(await reserveBudget(redis, ks, { tenant: t, limitNanoUsd: undefined, amountNanoUsd: 10 ** 12 })).toBe(true);
  });

  // The chaos helper's finding (c72550f): ioredis sends a script again after a reconnect when its
  // reply was lost, though Redis ran it. A reservation with an id is reserved once however often
  // the same call arrives; without the guard the second call reserved 700 more (1,400).
  it('a reservation re-sent with the same id is reserved once', async () => {
    const t = `br-${runId}`;
    const open = { id: `r1:b.s1:unused:${runId}`, runId: 'r1', attemptId: 'b.s1', atMs: 5 };
    const call = { tenant: t, amountNanoUsd: 700, limitNanoUsd: 1_000, open };
    expect(await reserveBudget(redis, ks, call)).toBe(true);
    expect(await reserveBudget(redis, ks, call)).toBe(true);
    expect(await redis.hget(tenantKeys(ks, t).budget, 'reservedNanoUsd')).toBe('700');
    // Another reservation (another id) is still checked against the limit.
    expect(await reserveBudget(redis, ks, { ...call, open: { ...open, id: `r1:b.s2:unused:${runId}` } })).toBe(false);
  });

  // Issue 13 items 3 and 5: the soak's key report found `settled:<id>` and `waste:<id>` kept in
  // the budget hash for ever (≈ 110 B per speculative run ended). They live under their run now.
  it('keeps settlement markers under their run, and honours markers written in the budget hash before', async () => {
    const t = `bm-${runId}`;
    const b = tenantKeys(ks, t);
    expect(await reserveBudget(redis, ks, { tenant: t, amountNanoUsd: 900, limitNanoUsd: 10_000 })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r1', settlementId: 'r1:b.s1', reservedNanoUsd: 500, wasteNanoUsd: 200, runningTotal: true })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r1', settlementId: 'r1:b.s1:unused:u', reservedNanoUsd: 400, wasteNanoUsd: 0 })).toBe(true);
    expect(await redis.hgetall(b.settled('r1'))).toEqual({ 'r1:b.s1': '200', 'r1:b.s1:unused:u': '-' });
    expect(Object.keys(await redis.hgetall(b.budget)).sort()).toEqual(['reservedNanoUsd', 'spentNanoUsd']);
    // A legacy settlement (before the move): settled once, topped up from its legacy total only.
    await redis.hset(b.budget, 'settled:r0:b.s1', '1', 'waste:r0:b.s1', '300', 'settled:r0:c.s1', '1');
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r0', settlementId: 'r0:b.s1', reservedNanoUsd: 500, wasteNanoUsd: 300, runningTotal: true })).toBe(false);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r0', settlementId: 'r0:b.s1', reservedNanoUsd: 500, wasteNanoUsd: 450, runningTotal: true })).toBe(true);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r0', settlementId: 'r0:c.s1', reservedNanoUsd: 500, wasteNanoUsd: 450, runningTotal: true })).toBe(false);
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r0', settlementId: 'r0:c.s1', reservedNanoUsd: 500, wasteNanoUsd: 0 })).toBe(false);
    expect(await redis.hmget(b.budget, 'reservedNanoUsd', 'spentNanoUsd', 'waste:r0:b.s1')).toEqual(['0', '350', '450']);
    expect(await redis.exists(b.settled('r0'))).toBe(0);
  });

  it('forgets the settlement markers of runs whose records expired, with their index entries (indexEndedRun)', async () => {
    const t = `bi-${runId}`;
    const b = tenantKeys(ks, t);
    for (const [r, endedAtMs] of [['r1', 1_000], ['r2', 2_000], ['r3', 3_000]] as const) {
      expect(await settleBudget(redis, ks, { tenant: t, runId: r, settlementId: `${r}:b.s1`, reservedNanoUsd: 0, wasteNanoUsd: 10, runningTotal: true })).toBe(true);
      expect(await indexEndedRun(redis, ks, { tenant: t, runId: r, endedAtMs, cutoffMs: undefined, maxForgotten: 10 })).toEqual({ ended: Number(r.slice(1)), forgotten: 0 });
    }
    // r1 and r2 ended at or before the cutoff: gone with their markers, at most one per call.
    expect(await settleBudget(redis, ks, { tenant: t, runId: 'r4', settlementId: 'r4:b.s1', reservedNanoUsd: 0, wasteNanoUsd: 10 })).toBe(true);
    expect(await indexEndedRun(redis, ks, { tenant: t, runId: 'r4', endedAtMs: 4_000, cutoffMs: 2_000, maxForgotten: 1 })).toEqual({ ended: 3, forgotten: 1 });
    expect(await redis.exists(b.settled('r1'))).toBe(0);
    expect(await redis.exists(b.settled('r2'))).toBe(1);
    expect(await indexEndedRun(redis, ks, { tenant: t, runId: 'r5', endedAtMs: 5_000, cutoffMs: 2_000, maxForgotten: 10 })).toEqual({ ended: 3, forgotten: 1 });
    expect(await redis.zrange(b.ended, '0', '-1')).toEqual(['r3', 'r4', 'r5']);
    expect(await redis.exists(b.settled('r2'))).toBe(0);
    expect(await redis.hgetall(b.settled('r3'))).toEqual({ 'r3:b.s1': '10' });
    expect(await redis.hgetall(b.settled('r4'))).toEqual({ 'r4:b.s1': '-' });
    expect(await redis.hmget(b.budget, 'spentNanoUsd')).toEqual(['40']);
  });
});

/**
 * A call executed twice: ioredis's default autoResendUnfulfilledCommands sends a command again
 * after a reconnect when its reply was lost (CLIENT KILL, a Redis restart), and Redis may have
 * executed it already. The second execution writes nothing and answers as the first did
 * (docs/runtime.md "Re-sent commands"); a different call of the same kind is still refused.
 */
describe('calls re-sent after a lost reply', () => {
  it('launchNode: the same call twice launches once and answers launched both times; another call is refused', async () => {
    expect(await launch('a', 0, 'hold-1')).toEqual({ ok: true, epoch: 1 });
    expect(await launch('a', 0, 'hold-1')).toEqual({ ok: true, epoch: 1 });
    expect(await launch('a', 0, 'hold-2')).toEqual({ ok: false, reason: 'state' });
    expect((await nodes()).get('a')).toMatchObject({ state: 'running', epoch: 1, auth: 'a.a1' });
    const k = runKeys(ks, tenant, runId);
    expect(await redis.hgetall(k.intents)).toEqual({ 'job-a.a1': '{"k":"hold-1"}' });
  });

  it('createSpecAttempt: the same call (its reservation id) twice launches once; another reservation is refused', async () => {
    await launch('a', 0);
    const spec = (reservationId: string) =>
      createSpecAttempt(redis, ks, {
        tenant,
        runId,
        nodeId: 'b',
        expectedEpoch: 0,
        claim: 'runtime',
        attemptId: 'b.s1',
        attemptJson: JSON.stringify({ ...attempt('b.s1', 'b', 'speculative', 1, { a: 'x' }), reservationId }),
        jobId: 'job-b.s1',
        intentJson: '{}',
        nowMs: 11,
        decisionJson: '{"decisionId":"d-b","posteriors":[]}',
        spec: { a: 'b.s1', d: 'd-b', assumed: { a: 'x' }, ok: {}, res: 500, cls: 'a=c', at: 11 },
      });
    expect(await spec(`${runId}:b.s1:unused:u-1`)).toEqual({ ok: true, epoch: 1 });
    expect(await spec(`${runId}:b.s1:unused:u-1`)).toEqual({ ok: true, epoch: 1 });
    expect(await spec(`${runId}:b.s1:unused:u-2`)).toEqual({ ok: false, reason: 'epoch' });
    // The re-send still answers launched once a worker has started the attempt.
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'b.s1', epoch: 1, workerId: 'w', nowMs: 12 });
    expect(await spec(`${runId}:b.s1:unused:u-1`)).toEqual({ ok: true, epoch: 1 });
    expect(await redis.llen(runKeys(ks, tenant, runId).decisions)).toBe(2);
    expect((await nodes()).get('b')).toMatchObject({ state: 'pending', epoch: 1, claims: { runtime: 1 } });
  });

  it('createGuessAttempt: the same call (its reservation id) twice buys once; another reservation is refused', async () => {
    await launch('a', 0);
    const buy = (reservationId: string) =>
      createGuessAttempt(redis, ks, {
        tenant,
        runId,
        nodeId: 'b',
        upstreamId: 'a',
        claim: 'guess-a',
        attemptId: 'b.g-a',
        attemptJson: JSON.stringify({ ...attempt('b.g-a', 'b', 'speculative', 0), reservationId }),
        jobId: 'job-b.g-a',
        intentJson: '{}',
        decisionJson: '{"decisionId":"buy","posteriors":[]}',
      });
    expect(await buy(`${runId}:b.g-a:unused:u-1`)).toBe(true);
    expect(await buy(`${runId}:b.g-a:unused:u-1`)).toBe(true);
    expect(await buy(`${runId}:b.g-a:unused:u-2`)).toBe(false);
    expect(await redis.llen(runKeys(ks, tenant, runId).decisions)).toBe(2);
  });

  it('holdSpend: the same hold (its key) twice is held once and answered held both times', async () => {
    const nowMs = Date.UTC(2026, 11, 7);
    const hold = () => holdSpend(redis, ks, { tenant, runId, key: 'a.a1:k1', amountNanoUsd: 600, capNanoUsd: 1_000, period: 'day', nowMs });
    expect((await hold()).ok).toBe(true);
    expect((await hold()).ok).toBe(true);
    const spend = admissionKeys(ks, tenant).spend;
    expect(await redis.hget(spend, `held:${spendPeriodField('day', nowMs)}`)).toBe('600');
    expect(await redis.hget(spend, `held:${spendPeriodField('month', nowMs)}`)).toBe('600');
    // Another launch's hold is checked against the cap with this one counted once.
    expect((await holdSpend(redis, ks, { tenant, runId, key: 'b.a1:k2', amountNanoUsd: 400, capNanoUsd: 1_000, period: 'day', nowMs })).ok).toBe(true);
  });

  it('finishRun: the same call twice answers succeeded both times (the caller then ends the run: its TTL)', async () => {
    for (const id of ['a', 'b', 'c']) {
      await launch(id, 0);
      await work(`${id}.a1`, 1, `out-${id}`);
      await completeNode(redis, ks, { tenant, runId, nodeId: id, attemptId: `${id}.a1`, nowMs: 40 });
    }
    expect(await finishRun(redis, ks, { tenant, runId, nowMs: 50 })).toBe(true);
    expect(await finishRun(redis, ks, { tenant, runId, nowMs: 50 })).toBe(true);
    // Another call (another time) finds the run ended.
    expect(await finishRun(redis, ks, { tenant, runId, nowMs: 51 })).toBe(false);
  });

  it('cancelRun: the same call twice answers ended both times, with the attempts it fenced while running', async () => {
    await launch('a', 0);
    await launch('b', 0);
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, workerId: 'w', nowMs: 5 });
    const call = { tenant, runId, status: 'failed' as const, reason: 'node x failed', nowMs: 99 };
    const first = await cancelRun(redis, ks, call);
    expect(first).toEqual({ ended: true, runningAttempts: ['a.a1'] });
    const before = await redis.hgetall(runKeys(ks, tenant, runId).attempts);
    expect(await cancelRun(redis, ks, call)).toEqual(first);
    expect(await redis.hgetall(runKeys(ks, tenant, runId).attempts)).toEqual(before);
    // Another end (another reason) is refused.
    expect((await cancelRun(redis, ks, { ...call, reason: 'user' })).ended).toBe(false);
  });

  it('settleEndedRun: the same call twice lists the attempt it fenced while running both times (its cancel broadcast)', async () => {
    await launch('a', 0);
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, workerId: 'w', nowMs: 5 });
    // Ended with the attempt still running (a finished run's paid guess, say).
    await redis.hset(runKeys(ks, tenant, runId).run, 'status', 'succeeded', 'finishedAtMs', '60');
    const call = { tenant, runId, nowMs: 70, graceMs: 5_000 };
    expect(await settleEndedRun(redis, ks, call)).toEqual({ changed: 1, waiting: 1, intentsDiscarded: 1, fencedRunning: ['a.a1'] });
    expect(await settleEndedRun(redis, ks, call)).toEqual({ changed: 0, waiting: 1, intentsDiscarded: 0, fencedRunning: ['a.a1'] });
  });

  it('closeReservation: the same call twice takes a reservation the sweep released meanwhile once', async () => {
    const t = `cr-${runId}`;
    const open = { id: `${runId}:b.s1:unused:u-1`, runId, attemptId: 'b.s1', atMs: 5 };
    expect(await reserveBudget(redis, ks, { tenant: t, amountNanoUsd: 700, limitNanoUsd: 10_000, open })).toBe(true);
    // The recovery sweep released it (this scheduler stalled); the launch then succeeded.
    expect(await settleBudget(redis, ks, { tenant: t, runId, settlementId: open.id, reservedNanoUsd: 700, wasteNanoUsd: 0, onlyIfOpen: true })).toBe(true);
    expect(await redis.hget(tenantKeys(ks, t).budget, 'reservedNanoUsd')).toBe('0');
    const call = { tenant: t, runId, id: open.id, amountNanoUsd: 700 };
    await closeReservation(redis, ks, call);
    await closeReservation(redis, ks, call);
    expect(await redis.hget(tenantKeys(ks, t).budget, 'reservedNanoUsd')).toBe('700');
  });

  it('discardSpeculation: the same call twice answers discarded both times, with the status it found (the cancel broadcast)', async () => {
    await launch('a', 0);
    const { id } = await speculate('b', 0, { a: 'x' });
    await startAttempt(redis, ks, { tenant, runId, attemptId: id, epoch: 1, workerId: 'w', nowMs: 12 });
    const call = { tenant, runId, nodeId: 'b', attemptId: id, kind: 'miss' as const, edge: 'a', nowMs: 20 };
    expect(await discardSpeculation(redis, ks, call)).toEqual({ discarded: true, previousStatus: 'running' });
    const before = await redis.hgetall(runKeys(ks, tenant, runId).nodes);
    expect(await discardSpeculation(redis, ks, call)).toEqual({ discarded: true, previousStatus: 'running' });
    expect(await redis.hgetall(runKeys(ks, tenant, runId).nodes)).toEqual(before);
    // Another discard of it (another kind) is not this call.
    expect(await discardSpeculation(redis, ks, { ...call, kind: 'cancelled', edge: '' })).toEqual({ discarded: false });
    // A queued one: finished at the call's time, so its re-send says queued (the job is dropped).
    const c = await speculate('c', 0, { a: 'x' });
    const q = { tenant, runId, nodeId: 'c', attemptId: c.id, kind: 'cancelled' as const, edge: '', nowMs: 21, onlyIfQueued: true };
    expect(await discardSpeculation(redis, ks, q)).toEqual({ discarded: true, previousStatus: 'queued' });
    expect(await discardSpeculation(redis, ks, q)).toEqual({ discarded: true, previousStatus: 'queued' });
  });

  it('cancelGuess: the same call twice answers cancelled both times, with the status it found', async () => {
    await launch('a', 0);
    const buy = await createGuessAttempt(redis, ks, {
      tenant,
      runId,
      nodeId: 'b',
      upstreamId: 'a',
      claim: 'guess-a',
      attemptId: 'b.g-a',
      attemptJson: JSON.stringify(attempt('b.g-a', 'b', 'speculative', 0)),
      jobId: 'job-b.g-a',
      intentJson: '{}',
      decisionJson: '{"decisionId":"buy","posteriors":[]}',
    });
    expect(buy).toBe(true);
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'b.g-a', epoch: 0, workerId: 'w', nowMs: 12 });
    await work('a.a1', 1, 'real');
    await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 40 });
    const call = { tenant, runId, upstreamId: 'a', attemptId: 'b.g-a', nowMs: 41 };
    expect(await cancelGuess(redis, ks, call)).toEqual({ cancelled: true, previousStatus: 'running' });
    expect(await cancelGuess(redis, ks, call)).toEqual({ cancelled: true, previousStatus: 'running' });
  });

  it('resolveAttention: the same resolution twice answers OK both times; another one is NOT_NEEDED', async () => {
    await launch('a', 0);
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, workerId: 'w', nowMs: 5 });
    await startAttempt(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, workerId: 'w', nowMs: 6 });
    expect((await markAttention(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, tryNo: 2, reason: 'may have run', nowMs: 7 })).code).toBe('OK');
    const call = { tenant, runId, attemptId: 'a.a1', resolution: 'succeeded' as const, text: 'it ran', nowMs: 8 };
    expect(await resolveAttention(redis, ks, call)).toEqual({ code: 'OK', status: 'succeeded' });
    expect(await resolveAttention(redis, ks, call)).toEqual({ code: 'OK', status: 'succeeded' });
    expect(await resolveAttention(redis, ks, { ...call, resolution: 'failed', text: 'it did not' })).toEqual({ code: 'NOT_NEEDED', status: 'succeeded' });
  });

  it('bookLateRunSpend: the same call twice (or a second scheduler with the same read) books a late bill once', async () => {
    const t = `lb-${runId}`;
    const nowMs = Date.UTC(2026, 11, 7);
    const day = spendPeriodField('day', nowMs);
    const call = { tenant: t, runId, costNanoUsd: 1_500, bookedNanoUsd: 1_000, nowMs };
    expect(await bookLateRunSpend(redis, ks, call)).toBe(500);
    expect(await bookLateRunSpend(redis, ks, call)).toBe(0);
    expect(await redis.hget(admissionKeys(ks, t).spend, day)).toBe('500');
    // A later bill books what is above the most booked, whatever the caller read.
    expect(await bookLateRunSpend(redis, ks, { ...call, costNanoUsd: 1_800 })).toBe(300);
    expect(await bookLateRunSpend(redis, ks, { ...call, costNanoUsd: 1_800, bookedNanoUsd: 1_500 })).toBe(0);
    expect(await redis.hget(admissionKeys(ks, t).spend, day)).toBe('800');
  });
});
