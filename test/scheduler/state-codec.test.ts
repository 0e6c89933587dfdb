/**
 * Issue 13 item 3: the compact encoding of a run's attempt records and node states while it is in
 * flight (packages/shared/src/redis/state-codec.ts and its Lua twin lua/lib/state-codec.lua),
 * against a real redis-server: both sides round-trip every field, agree on what they store, and
 * read records written before the codec (long names: a run in flight across an upgrade).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttemptRecord } from '@gambit/shared';
import {
  completeNode,
  createRun,
  decodeAttempt,
  decodeNode,
  defineAttemptScripts,
  defineRunScripts,
  encodeAttempt,
  encodeNode,
  finishAttempt,
  initialNodeState,
  type KeySpace,
  launchNode,
  type NodeState,
  NodeStateSchema,
  parseNodes,
  readAttempt,
  runKeys,
  startAttempt,
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

const LIB = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../packages/shared/src/redis/lua/lib/state-codec.lua'), 'utf8');
/** Runs `body` after the Lua codec, with ARGV[1] the input. */
const lua = async (body: string, arg: string, arg2 = ''): Promise<string> => String(await redis.eval(`${LIB}\n${body}`, 0, arg, arg2));

const full: AttemptRecord = {
  attemptId: 'answer.s2',
  nodeId: 'answer',
  kind: 'speculative',
  epoch: 2,
  status: 'needs_attention',
  assumed: { route: 'billing', other: 'x' },
  decisionId: 'r1:answer:runtime',
  output: 'a reply',
  usage: { inputTokens: 120, cachedInputTokens: 30, cacheWriteTokens: 7, outputTokens: 45 },
  usageEstimated: true,
  costNanoUsd: 12_345,
  reservedNanoUsd: 500,
  reservationId: 'res-1',
  createdAtMs: 1_796_000_000_100,
  startedAtMs: 1_796_000_000_200,
  finishedAtMs: 1_796_000_000_900,
  tries: 2,
  billedTries: [1, 2],
  workerId: 'w-1',
  error: 'boom',
  attention: 'effects staged, outcome unknown',
  attentionAtMs: 1_796_000_000_950,
  resolvedBy: 'operator',
};
const minimal: AttemptRecord = { attemptId: 'a.a1', nodeId: 'a', kind: 'authoritative', epoch: 1, status: 'queued', assumed: {}, costNanoUsd: 0, createdAtMs: 1_796_000_000_000, tries: 0 };
// Parsed, so that the schema's defaults (`ok`, `st` of closed entries) are in the expected value.
const fullNode: NodeState = NodeStateSchema.parse({
  state: 'pending',
  epoch: 3,
  auth: 'answer.a1',
  output: 'out',
  source: 'speculative',
  error: 'e',
  startedAtMs: 1_796_000_000_100,
  finishedAtMs: 1_796_000_000_200,
  spec: { a: 'answer.s2', d: 'r1:answer:runtime', assumed: { route: 'billing' }, ok: { route: 1 }, res: 500, cls: 'route=t/wf/route->answer', at: 1_796_000_000_050 },
  closed: { 'answer.s1': { kind: 'miss', d: 'r1:answer:stream', res: 0, cls: 'route=t/wf/route->answer', at: 1_796_000_000_040, edge: 'route', w: 3 } },
  shadow: { d: 'r1:answer:plan', assumed: { route: 'refund' }, cls: 'route=t/wf/route->answer', r: 'ev' },
  claims: { runtime: 1, stream: 1 },
  outs: { 'r1:answer.s1:route': 1 },
} satisfies NodeState);

describe('state codec (issue 13 item 3)', () => {
  let ks: KeySpace;
  beforeEach(() => {
    ks = { prefix: uniquePrefix('statecodec') };
  });

  it('round-trips every attempt and node field in TypeScript, with short names and no empty defaults stored', () => {
    for (const a of [full, minimal]) {
      const text = encodeAttempt(a);
      expect(decodeAttempt(text, a.attemptId)).toEqual(a);
      expect(text.length).toBeLessThan(JSON.stringify(a).length);
      for (const long of ['attemptId', 'nodeId', 'status', 'createdAtMs', 'authoritative', 'inputTokens']) expect(text).not.toContain(long);
    }
    // The attempt id is the record's field in the hash: not in the record.
    expect(JSON.parse(encodeAttempt(minimal))).toEqual({ s: 'q', t: 1_796_000_000_000 });
    expect(JSON.parse(encodeAttempt({ ...minimal, attemptId: 'b.g-x.y', nodeId: 'b', startedAtMs: 1_796_000_000_007 }))).toEqual({ n: 'b', k: 'A', e: 1, s: 'q', t: 1_796_000_000_000, t0: 7 });
    expect(decodeAttempt(encodeAttempt({ ...minimal, attemptId: 'b.g-x.y', nodeId: 'b' }), 'b.g-x.y')).toEqual({ ...minimal, attemptId: 'b.g-x.y', nodeId: 'b' });
    // A compact record written with its id (before it was left out) reads the same under its field.
    expect(decodeAttempt(JSON.stringify({ i: 'a.a1', s: 'q', t: 1_796_000_000_000 }), 'a.a1')).toEqual(minimal);
    const pending = initialNodeState();
    for (const n of [fullNode, pending]) expect(decodeNode(encodeNode(n))).toEqual(n);
    expect(JSON.parse(encodeNode(pending))).toEqual({ s: 'p', e: 0 });
    // usageEstimated false with usage is left out and read back as false; without usage it is kept.
    const billed: AttemptRecord = { ...minimal, status: 'succeeded', usage: { inputTokens: 1, cachedInputTokens: 0, outputTokens: 2 }, usageEstimated: false };
    expect(encodeAttempt(billed)).not.toContain('ue');
    expect(decodeAttempt(encodeAttempt(billed), billed.attemptId)).toEqual(billed);
    expect(decodeAttempt(encodeAttempt({ ...minimal, usageEstimated: false }), minimal.attemptId)).toEqual({ ...minimal, usageEstimated: false });
  });

  it('the Lua codec stores what the TypeScript codec stores, and decodes it to the same record', async () => {
    for (const a of [full, minimal]) {
      // Lua encodes a long-named record as TypeScript does (compared as values: key order differs).
      expect(JSON.parse(await lua('return encA(cjson.decode(ARGV[1]))', JSON.stringify(a)))).toEqual(JSON.parse(encodeAttempt(a)));
      // Lua decodes TypeScript's text to the long names, defaults restored.
      expect(decodeAttempt(await lua('return cjson.encode(decA(ARGV[1], ARGV[2]))', encodeAttempt(a), a.attemptId), a.attemptId)).toEqual(a);
      // decode then encode in Lua is the identity on stored text.
      expect(JSON.parse(await lua('return encA(decA(ARGV[1], ARGV[2]))', encodeAttempt(a), a.attemptId))).toEqual(JSON.parse(encodeAttempt(a)));
      // Lua restores the id from the hash field: the decoded record says it.
      expect(JSON.parse(await lua('return cjson.encode(decA(ARGV[1], ARGV[2]))', encodeAttempt(a), a.attemptId)).attemptId).toBe(a.attemptId);
    }
    // A succeeded node: its source left out when authoritative, kept when speculative or absent.
    const done: NodeState = { state: 'succeeded', epoch: 1, auth: 'a.a1', source: 'authoritative', startedAtMs: 1_796_000_000_100, finishedAtMs: 1_796_000_000_250, closed: {}, claims: {}, outs: {} };
    expect(JSON.parse(encodeNode(done))).toEqual({ s: 'ok', e: 1, au: 'a.a1', t0: 1_796_000_000_100, t1: 150 });
    const { source: _none, ...noSource } = done;
    for (const n of [fullNode, initialNodeState(), done, { ...done, source: 'speculative' as const }, noSource]) {
      expect(decodeNode(encodeNode(n))).toEqual(n);
      expect(JSON.parse(await lua('return encN(cjson.decode(ARGV[1]))', JSON.stringify(n)))).toEqual(JSON.parse(encodeNode(n)));
      expect(decodeNode(await lua('return cjson.encode(decN(ARGV[1]))', encodeNode(n)))).toEqual(n);
    }
  });

  it('reads records written before the codec (long names), in TypeScript and in the scripts, and rewrites them compactly', async () => {
    expect(decodeAttempt(JSON.stringify(full), 'ignored: the record says its id')).toEqual(full);
    expect(decodeNode(JSON.stringify(fullNode))).toEqual(fullNode);
    expect(JSON.parse(await lua('return encA(decA(ARGV[1], ARGV[2]))', JSON.stringify(full), full.attemptId))).toEqual(JSON.parse(encodeAttempt(full)));
    // A run in flight across the upgrade: its node and attempt in the old encoding.
    const tenant = 't';
    const runId = 'r-old';
    const k = runKeys(ks, tenant, runId);
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflowName: 'wf', createdAtMs: 1 }, nodes: { a: initialNodeState() }, planDecisions: [] });
    await redis.hset(k.nodes, 'a', JSON.stringify({ state: 'running', epoch: 1, auth: 'a.a1', startedAtMs: 10, closed: {}, claims: {}, outs: {} }));
    await redis.hset(k.attempts, 'a.a1', JSON.stringify({ ...minimal, createdAtMs: 10 }));
    expect(parseNodes(await redis.hgetall(k.nodes)).get('a')).toMatchObject({ state: 'running', epoch: 1, auth: 'a.a1' });
    expect((await startAttempt(redis, ks, { tenant, runId, attemptId: 'a.a1', epoch: 1, workerId: 'w', nowMs: 20 })).code).toBe('OK');
    const fin = await finishAttempt(redis, ks, {
      tenant,
      runId,
      attemptId: 'a.a1',
      epoch: 1,
      tryNo: 1,
      outcome: 'ok',
      output: 'done',
      usage: { inputTokens: 3, cachedInputTokens: 0, outputTokens: 2 },
      usageEstimated: false,
      costNanoUsd: 70,
      finishedAtMs: 30,
    });
    expect(fin.code).toBe('OK');
    expect(await completeNode(redis, ks, { tenant, runId, nodeId: 'a', attemptId: 'a.a1', nowMs: 31 })).toEqual({ code: 'completed', state: 'succeeded' });
    const stored = (await redis.hget(k.attempts, 'a.a1')) ?? '';
    expect(stored).not.toContain('attemptId');
    expect(await readAttempt(redis, ks, tenant, runId, 'a.a1')).toEqual({
      ...minimal,
      status: 'succeeded',
      createdAtMs: 10,
      startedAtMs: 20,
      finishedAtMs: 30,
      workerId: 'w',
      tries: 1,
      billedTries: [1],
      output: 'done',
      usage: { inputTokens: 3, cachedInputTokens: 0, outputTokens: 2 },
      usageEstimated: false,
      costNanoUsd: 70,
    });
    // The output is kept once, in the attempt: the node says so (`oa`) and is read with it.
    const node = (await redis.hget(k.nodes, 'a')) ?? '';
    expect(node).not.toContain('state');
    expect(node).not.toContain('done');
    expect(JSON.parse(node).oa).toBe(1);
    expect(parseNodes({ a: node }).get('a')?.output).toBeUndefined();
    const attempts = await redis.hgetall(k.attempts);
    const attemptOutput = (id: string) => (attempts[id] === undefined ? undefined : decodeAttempt(attempts[id], id).output);
    expect(parseNodes(await redis.hgetall(k.nodes), attemptOutput).get('a')).toEqual({ state: 'succeeded', epoch: 1, auth: 'a.a1', source: 'authoritative', output: 'done', startedAtMs: 10, finishedAtMs: 30, closed: {}, claims: {}, outs: {} });
    expect(decodeNode(node, attemptOutput).output).toBe('done');
  });

  it('parsed node states are cached by their JSON, frozen, and a long JSON (an output kept in the node) is not cached', () => {
    const short = encodeNode({ ...initialNodeState(), state: 'running', epoch: 1, auth: 'a.a1' });
    const first = parseNodes({ a: short }).get('a');
    expect(parseNodes({ a: short }).get('a')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    const long = encodeNode({ ...initialNodeState(), state: 'failed', epoch: 1, auth: 'a.a1', error: 'x'.repeat(5_000) });
    const once = parseNodes({ a: long }).get('a');
    expect(once?.error).toHaveLength(5_000);
    expect(parseNodes({ a: long }).get('a')).not.toBe(once);
    expect(parseNodes({ a: long }).get('a')).toEqual(once);
  });

  it('a launch stores the compact encoding of both the node and its attempt', async () => {
    const tenant = 't';
    const runId = 'r-new';
    const k = runKeys(ks, tenant, runId);
    await createRun(redis, ks, { tenant, runId, header: { tenant, runId, status: 'running', workflowName: 'wf', createdAtMs: 1 }, nodes: { a: initialNodeState() }, planDecisions: [] });
    expect(await redis.hget(k.nodes, 'a')).toBe(encodeNode(initialNodeState()));
    const r = await launchNode(redis, ks, { tenant, runId, nodeId: 'a', expectedEpoch: 0, attemptId: 'a.a1', attemptJson: encodeAttempt({ ...minimal, createdAtMs: 5 }), jobId: 'j', intentJson: '{}', nowMs: 5 });
    expect(r).toEqual({ ok: true, epoch: 1 });
    expect(await redis.hget(k.attempts, 'a.a1')).toBe(encodeAttempt({ ...minimal, createdAtMs: 5 }));
    expect(JSON.parse((await redis.hget(k.nodes, 'a')) ?? '')).toEqual({ s: 'r', e: 1, au: 'a.a1', t0: 5 });
    // Lua leaves nodeId out as TypeScript does when the attempt id names it, and keeps it when not.
    // ... and kind and epoch when the id says them, and keeps them when it does not.
    for (const a of [
      { ...minimal, attemptId: 'b.g-x.y', nodeId: 'b' },
      { ...full, attemptId: 'odd', nodeId: 'answer' },
      { ...minimal, attemptId: 'a.s3', kind: 'authoritative' as const, epoch: 2 },
      { ...full, attemptId: 'answer.s7' },
    ]) {
      expect(JSON.parse(await lua('return encA(cjson.decode(ARGV[1]))', JSON.stringify(a)))).toEqual(JSON.parse(encodeAttempt(a)));
      expect(decodeAttempt(await lua('return cjson.encode(decA(ARGV[1], ARGV[2]))', encodeAttempt(a), a.attemptId), a.attemptId)).toEqual(a);
    }
  });
});
