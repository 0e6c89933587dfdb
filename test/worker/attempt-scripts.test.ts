/**
 * M6 fencing and M8 billing in the attempt Lua scripts, against a real Redis: a result from a
 * cancelled, superseded, re-epoched or stale try is rejected atomically however late it arrives,
 * while the money it spent is still recorded, exactly once per try.
 */
import { type KeySpace, defineAttemptScripts, failAttempt, finishAttempt, readAttempt, readStaging, runKeys, stageEffects, startAttempt } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createAttempt, setStatus } from './helpers.js';

const USAGE = { inputTokens: 100, cachedInputTokens: 0, outputTokens: 40 };

describe('attempt scripts (M6 fencing, M8 billing)', () => {
  let redis: Redis;
  let ks: KeySpace;
  const ref = { tenant: 'acme', runId: 'r1', attemptId: 'a1', epoch: 3 };
  const finish = (tryNo: number, over: Partial<Parameters<typeof finishAttempt>[2]> = {}) =>
    finishAttempt(redis, ks, {
      ...ref,
      tryNo,
      outcome: 'ok',
      output: 'the answer',
      usage: USAGE,
      usageEstimated: false,
      costNanoUsd: 1234,
      finishedAtMs: 2000,
      ...over,
    });
  const start = () => startAttempt(redis, ks, { ...ref, workerId: 'w1', nowMs: 1000 });

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
    defineAttemptScripts(redis);
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(async () => {
    ks = { prefix: uniquePrefix('ascripts') };
  });

  it('start → finish accepts the output and bills the run once', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n', kind: 'speculative' });
    expect(await start()).toEqual({ code: 'OK', tries: 1 });
    expect(await finish(1)).toEqual({ code: 'OK', status: 'succeeded' });
    // A re-sent finish (reply lost, command retried) neither bills twice nor changes the output.
    expect(await finish(1, { output: 'other' })).toEqual({ code: 'DONE', status: 'succeeded' });
    const rec = await readAttempt(redis, ks, 'acme', 'r1', 'a1');
    expect(rec).toMatchObject({ status: 'succeeded', output: 'the answer', usage: USAGE, costNanoUsd: 1234, tries: 1, startedAtMs: 1000, finishedAtMs: 2000 });
    const run = await redis.hgetall(runKeys(ks, 'acme', 'r1').run);
    expect(run).toEqual({ costNanoUsd: '1234', specCostNanoUsd: '1234' });
    // A finished attempt is never executed again.
    expect(await start()).toEqual({ code: 'DONE', tries: 1, status: 'succeeded' });
  });

  it('fencing: finish on a cancelled attempt records usage and cost but rejects the output', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n' });
    expect((await start()).code).toBe('OK');
    await setStatus(redis, ks, 'acme', 'r1', 'a1', 'cancelled');
    expect(await finish(1, { usageEstimated: true })).toEqual({ code: 'FENCED', status: 'cancelled' });
    const rec = await readAttempt(redis, ks, 'acme', 'r1', 'a1');
    expect(rec?.status).toBe('cancelled');
    expect(rec?.output).toBeUndefined();
    expect(rec?.usage).toEqual(USAGE);
    expect(rec?.usageEstimated).toBe(true);
    expect(rec?.costNanoUsd).toBe(1234);
    expect(await redis.hget(runKeys(ks, 'acme', 'r1').run, 'costNanoUsd')).toBe('1234');
    // Authoritative: no speculative cost.
    expect(await redis.hget(runKeys(ks, 'acme', 'r1').run, 'specCostNanoUsd')).toBeNull();
    // A fenced attempt is never started again.
    expect(await start()).toEqual({ code: 'FENCED', tries: 1, status: 'cancelled' });
  });

  it('fencing: superseded status and a stale epoch reject the result too', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n' });
    expect((await start()).code).toBe('OK');
    await setStatus(redis, ks, 'acme', 'r1', 'a1', 'superseded');
    expect((await finish(1)).code).toBe('FENCED');
    await createAttempt(redis, ks, { ...ref, attemptId: 'a2', nodeId: 'n', epoch: 4 });
    // The job carries epoch 3, the record says 4: do not execute.
    expect(await startAttempt(redis, ks, { ...ref, attemptId: 'a2', workerId: 'w', nowMs: 1 })).toEqual({ code: 'FENCED', tries: 0, status: 'queued' });
  });

  it('a stale try (a newer one started after a stall) is billed but its output rejected', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n' });
    expect(await start()).toEqual({ code: 'OK', tries: 1 });
    expect(await start()).toEqual({ code: 'OK', tries: 2 });
    expect(await finish(1, { output: 'zombie' })).toEqual({ code: 'STALE', status: 'running' });
    expect(await finish(2)).toEqual({ code: 'OK', status: 'succeeded' });
    const rec = await readAttempt(redis, ks, 'acme', 'r1', 'a1');
    expect(rec?.output).toBe('the answer');
    expect(rec?.billedTries).toEqual([1, 2]);
    expect(rec?.costNanoUsd).toBe(2468);
    expect(rec?.usage).toEqual({ inputTokens: 200, cachedInputTokens: 0, outputTokens: 80 });
  });

  it('an aborted try on a live attempt is billed and leaves it running', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n' });
    await start();
    expect(await finish(1, { outcome: 'aborted', output: '' })).toEqual({ code: 'ABORTED', status: 'running' });
    const rec = await readAttempt(redis, ks, 'acme', 'r1', 'a1');
    expect(rec).toMatchObject({ status: 'running', costNanoUsd: 1234 });
    expect(rec?.output).toBeUndefined();
  });

  it('M6 staging: only the live current try stages; a new try starts from an empty staging list', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n', kind: 'speculative' });
    const eff = { type: 'message', to: 'bob', body: 'hi' };
    // Not started yet: nothing may be staged.
    expect((await stageEffects(redis, ks, { ...ref, tryNo: 1, effects: [eff] })).code).toBe('FENCED');
    await start();
    expect(await stageEffects(redis, ks, { ...ref, tryNo: 1, effects: [eff, { ...eff, to: 'ann' }] })).toEqual({ code: 'OK', length: 2 });
    await start();
    expect(await readStaging(redis, ks, 'acme', 'r1', 'a1')).toEqual([]);
    expect((await stageEffects(redis, ks, { ...ref, tryNo: 1, effects: [eff] })).code).toBe('STALE');
    expect(await stageEffects(redis, ks, { ...ref, tryNo: 2, effects: [eff] })).toEqual({ code: 'OK', length: 1 });
    await setStatus(redis, ks, 'acme', 'r1', 'a1', 'cancelled');
    expect((await stageEffects(redis, ks, { ...ref, tryNo: 2, effects: [eff] })).code).toBe('FENCED');
    expect(await readStaging(redis, ks, 'acme', 'r1', 'a1')).toEqual([eff]);
  });

  it('failAttempt fails a live attempt, never a fenced or finished one', async () => {
    await createAttempt(redis, ks, { ...ref, nodeId: 'n' });
    await start();
    expect(await failAttempt(redis, ks, { ...ref, tryNo: 1, error: 'PROVIDER_AUTH: bad key', finishedAtMs: 5 })).toEqual({ code: 'OK', status: 'failed' });
    expect(await failAttempt(redis, ks, { ...ref, tryNo: 1, error: 'again', finishedAtMs: 6 })).toEqual({ code: 'DONE', status: 'failed' });
    expect((await readAttempt(redis, ks, 'acme', 'r1', 'a1'))?.error).toBe('PROVIDER_AUTH: bad key');
    await createAttempt(redis, ks, { ...ref, attemptId: 'a2', nodeId: 'n' });
    await setStatus(redis, ks, 'acme', 'r1', 'a2', 'cancelled');
    expect((await failAttempt(redis, ks, { ...ref, attemptId: 'a2', tryNo: 0, error: 'x', finishedAtMs: 6 })).code).toBe('FENCED');
    expect((await finishAttempt(redis, ks, { ...ref, attemptId: 'nope', tryNo: 1, outcome: 'ok', output: '', usage: USAGE, usageEstimated: false, costNanoUsd: 0, finishedAtMs: 1 })).code).toBe(
      'MISSING',
    );
  });

  it('rejects a non-integer cost before calling Redis (money is integer nano-USD)', async () => {
    await expect(finish(1, { costNanoUsd: 1.5 })).rejects.toThrow(RangeError);
  });
});
