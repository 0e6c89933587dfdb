/**
 * A staged effect is staged once even when its stageEffect call runs twice (chaos campaign
 * ch20261207-55: `no_effect_twice: 2 messages released`). The worker's connection keeps ioredis's
 * default autoResendUnfulfilledCommands: a command written to Redis whose reply was lost when the
 * connection dropped (CLIENT KILL, a Redis restart) is sent again after the reconnect, and Redis
 * executes it a second time. Here a TCP proxy in front of a real Redis swallows the reply of the
 * stageEffect call and cuts the connection: ioredis re-sends the call on its new connection.
 */
import { type KeySpace, completeNode, defineAttemptScripts, defineRunScripts, finishAttempt, readStaging, runKeys, stageEffects, startAttempt } from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TcpProxy } from '../estimator/tcp-proxy.js';
import { createAttempt, type ResendLink, startResendLink } from './helpers.js';

describe('stageEffect re-sent after a lost reply (no_effect_twice)', () => {
  let direct: Redis;
  let viaProxy: Redis;
  let proxy: TcpProxy;
  let ks: KeySpace;
  const ref = { tenant: 'acme', runId: 'r1', attemptId: 'notify.a1', epoch: 1 };
  const message = { type: 'message', to: 'o-1', body: 'your billing case is open' };

  let link: ResendLink;
  beforeAll(async () => {
    link = await startResendLink();
    ({ direct, viaProxy, proxy } = link);
    defineAttemptScripts(direct);
    defineRunScripts(direct);
  });
  afterAll(() => link.close());
  beforeEach(() => {
    ks = { prefix: uniquePrefix('stresend') };
  });

  it('a call whose reply was lost is re-sent by ioredis and stages once; the node releases one message', async () => {
    await createAttempt(direct, ks, { ...ref, nodeId: 'notify', epoch: 1 });
    const k = runKeys(ks, ref.tenant, ref.runId);
    await direct.hset(k.nodes, 'notify', JSON.stringify({ state: 'running', epoch: 1, auth: ref.attemptId }));
    expect(await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1000 })).toEqual({ code: 'OK', tries: 1 });
    // The stageEffect script's source (sent whole by EVAL on a connection's first call) says this.
    proxy.dropReplyAfter('staging list (M6 commit barrier)');
    expect(await stageEffects(viaProxy, ks, { ...ref, tryNo: 1, effects: [message] })).toEqual({ code: 'OK', length: 1 });
    // The reply was dropped and the connection cut: the call reached Redis twice.
    expect(proxy.dropped()).toBe(1);
    expect(await readStaging(direct, ks, ref.tenant, ref.runId, ref.attemptId)).toEqual([message]);
    expect((await finishAttempt(direct, ks, { ...ref, tryNo: 1, outcome: 'ok', output: 'sent', usage: { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 }, usageEstimated: false, costNanoUsd: 0, finishedAtMs: 2000 })).code).toBe('OK');
    expect(await completeNode(direct, ks, { tenant: ref.tenant, runId: ref.runId, nodeId: 'notify', attemptId: ref.attemptId, nowMs: 2000 })).toEqual({ code: 'completed', state: 'succeeded' });
    expect((await direct.lrange(k.effects, 0, -1)).map((e) => JSON.parse(e))).toEqual([message]);
  });

  it('the script: a second identical call appends nothing; a list that matches neither count is a conflict', async () => {
    await createAttempt(direct, ks, { ...ref, nodeId: 'notify', epoch: 1 });
    await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1000 });
    const other = { ...message, to: 'o-2' };
    expect(await stageEffects(direct, ks, { ...ref, tryNo: 1, effects: [message] })).toEqual({ code: 'OK', length: 1 });
    expect(await stageEffects(direct, ks, { ...ref, tryNo: 1, effects: [message] })).toEqual({ code: 'OK', length: 1 });
    // A second call of the same try, after the first's one effect.
    expect(await stageEffects(direct, ks, { ...ref, tryNo: 1, stagedBefore: 1, effects: [other, message] })).toEqual({ code: 'OK', length: 3 });
    expect(await stageEffects(direct, ks, { ...ref, tryNo: 1, stagedBefore: 1, effects: [other, message] })).toEqual({ code: 'OK', length: 3 });
    // Neither 1 effect before this call nor 1 + 1 after it: thrown, nothing written.
    await expect(stageEffects(direct, ks, { ...ref, tryNo: 1, stagedBefore: 1, effects: [other] })).rejects.toThrow(/CONFLICT/);
    await expect(stageEffects(direct, ks, { ...ref, tryNo: 1, effects: [other] })).rejects.toThrow(/CONFLICT/);
    expect(await readStaging(direct, ks, ref.tenant, ref.runId, ref.attemptId)).toEqual([message, other, message]);
    // A new try starts from an empty list, so its first call stages again.
    await startAttempt(direct, ks, { ...ref, workerId: 'w1', nowMs: 1500 });
    expect(await stageEffects(direct, ks, { ...ref, tryNo: 2, effects: [message] })).toEqual({ code: 'OK', length: 1 });
  });
});
