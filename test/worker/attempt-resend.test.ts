/**
 * The worker's attempt scripts executed twice by one call (docs/runtime.md "Re-sent commands"):
 * ioredis's default autoResendUnfulfilledCommands sends a command again after a reconnect when
 * its reply was lost (CLIENT KILL, a Redis restart, a network cut), and Redis may already have
 * executed it. The second execution must change nothing and answer as the first did.
 * startAttempt goes through the TCP proxy of test/estimator/tcp-proxy.ts, which swallows the
 * reply and cuts the connection (as test/worker/stage-resend does); the others are called twice
 * with identical arguments, which is what the re-send amounts to at the script.
 */
import { defineAttemptScripts, failAttempt, finishAttempt, type KeySpace, markAttention, runKeys, startAttempt } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TcpProxy } from '../estimator/tcp-proxy.js';
import { createAttempt, type ResendLink, readRecord, startResendLink } from './helpers.js';

describe('attempt scripts re-sent after a lost reply', () => {
  let direct: Redis;
  let viaProxy: Redis;
  let proxy: TcpProxy;
  let ks: KeySpace;
  const ref = { tenant: 'acme', runId: 'r1', attemptId: 'charge.a1', epoch: 1 };
  const usage = { inputTokens: 10, cachedInputTokens: 0, outputTokens: 5 };

  let link: ResendLink;
  beforeAll(async () => {
    link = await startResendLink();
    ({ direct, viaProxy, proxy } = link);
    defineAttemptScripts(direct);
  });
  afterAll(() => link.close());
  beforeEach(async () => {
    ks = { prefix: uniquePrefix('atresend') };
    await createAttempt(direct, ks, { ...ref, nodeId: 'charge', epoch: 1 });
  });

  it('startAttempt: a call whose reply was lost is re-sent by ioredis and starts one try, not two', async () => {
    // The script's source (sent whole by EVAL on a connection's first call) says this.
    proxy.dropReplyAfter('Starts one execution ("try") of an attempt');
    const before = proxy.dropped();
    expect(await startAttempt(viaProxy, ks, { ...ref, workerId: 'w1', nowMs: 1000 })).toEqual({ code: 'OK', tries: 1 });
    // The reply was dropped and the connection cut: the call reached Redis twice.
    expect(proxy.dropped()).toBe(before + 1);
    const rec = await readRecord(direct, ks, ref.tenant, ref.runId, ref.attemptId);
    expect(rec.tries).toBe(1);
    expect(rec.status).toBe('running');
    // The next start (a real retry: another key) is try 2, and the key is gone once the try records its result.
    expect(await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 2000 })).toEqual({ code: 'OK', tries: 2 });
    expect((await finishAttempt(direct, ks, { ...ref, tryNo: 2, outcome: 'ok', output: 'done', usage, usageEstimated: false, costNanoUsd: 7, finishedAtMs: 3000 })).code).toBe('OK');
    expect(await direct.hget(runKeys(ks, ref.tenant, ref.runId).attempts, ref.attemptId)).not.toContain('"sk"');
  });

  it('startAttempt: the same key twice is one try; a re-send after a cancel answers FENCED', async () => {
    const a = { ...ref, workerId: 'w1', nowMs: 1000, startKey: 'k-1' };
    expect(await startAttempt(direct, ks, a)).toEqual({ code: 'OK', tries: 1 });
    expect(await startAttempt(direct, ks, a)).toEqual({ code: 'OK', tries: 1 });
    // A staged effect of the try survives the re-send (the staging list is cleared only by a new try).
    await direct.rpush(runKeys(ks, ref.tenant, ref.runId).staging(ref.attemptId), '{"type":"x"}');
    expect(await startAttempt(direct, ks, a)).toEqual({ code: 'OK', tries: 1 });
    expect(await direct.llen(runKeys(ks, ref.tenant, ref.runId).staging(ref.attemptId))).toBe(1);
    expect(await startAttempt(direct, ks, { ...a, startKey: 'k-2' })).toEqual({ code: 'OK', tries: 2 });
    const rec = await readRecord(direct, ks, ref.tenant, ref.runId, ref.attemptId);
    await direct.hset(runKeys(ks, ref.tenant, ref.runId).attempts, ref.attemptId, JSON.stringify({ ...rec, status: 'cancelled' }));
    expect(await startAttempt(direct, ks, { ...a, startKey: 'k-2' })).toEqual({ code: 'FENCED', tries: 2, status: 'cancelled' });
  });

  it('finishAttempt: executed twice, bills once and answers OK both times', async () => {
    await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1000 });
    const fin = { ...ref, tryNo: 1, outcome: 'ok' as const, output: 'charged', usage, usageEstimated: false, costNanoUsd: 700, finishedAtMs: 2000 };
    expect(await finishAttempt(direct, ks, fin)).toEqual({ code: 'OK', status: 'succeeded' });
    expect(await finishAttempt(direct, ks, fin)).toEqual({ code: 'OK', status: 'succeeded' });
    expect(await direct.hget(runKeys(ks, ref.tenant, ref.runId).run, 'costNanoUsd')).toBe('700');
    // Another result of the same try (not this call) is still refused.
    expect(await finishAttempt(direct, ks, { ...fin, output: 'other', finishedAtMs: 2500 })).toEqual({ code: 'DONE', status: 'succeeded' });
  });

  it('failAttempt: executed twice, answers OK both times', async () => {
    await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1000 });
    const f = { ...ref, tryNo: 1, error: 'TOOL: refused', usage, costNanoUsd: 300, finishedAtMs: 2000 };
    expect(await failAttempt(direct, ks, f)).toEqual({ code: 'OK', status: 'failed' });
    expect(await failAttempt(direct, ks, f)).toEqual({ code: 'OK', status: 'failed' });
    expect(await direct.hget(runKeys(ks, ref.tenant, ref.runId).run, 'costNanoUsd')).toBe('300');
    expect(await failAttempt(direct, ks, { ...f, error: 'another', finishedAtMs: 2500 })).toEqual({ code: 'DONE', status: 'failed' });
  });

  it('markAttention: executed twice, answers OK both times (the worker indexes the attempt for the operator on OK only)', async () => {
    await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1000 });
    await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1500 });
    const m = { ...ref, tryNo: 2, reason: 'irreversible tool "charge" may have run', nowMs: 2000 };
    expect(await markAttention(direct, ks, m)).toEqual({ code: 'OK', status: 'needs_attention' });
    expect(await markAttention(direct, ks, m)).toEqual({ code: 'OK', status: 'needs_attention' });
    expect(await markAttention(direct, ks, { ...m, nowMs: 2500 })).toEqual({ code: 'DONE', status: 'needs_attention' });
  });
});
