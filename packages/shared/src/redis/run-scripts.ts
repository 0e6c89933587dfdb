/**
 * Typed wrappers of the scheduler's run-state scripts (M6 fencing, M8 runtime mechanics): create
 * a run, launch a node, launch / confirm / discard a speculation, complete a node, record a
 * decision or an outcome once, end a run, and reserve / settle a tenant's speculative budget
 * (M10). Each script is one Lua file in `lua/` whose header documents KEYS, ARGV and return
 * codes. Run scripts touch only keys of the run's hash tag; budget scripts only the tenant's.
 * The node state they share is `NodeStateSchema`, stored as JSON in the run's `nodes` hash.
 */
import { z } from 'zod';
import { DECISION_REASONS } from '../core/types.js';
import { RedisScriptError, UnavailableError } from '../errors.js';
import { admissionKeys, controlKeys, type KeySpace, runKeys, tenantKeys } from './keys.js';
import { spendPeriodField } from './admission-scripts.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';
import { decodeNodeRef } from './state-codec.js';

export const RUN_SCRIPT_FILES = [
  'createRun-3.lua',
  'launchNode-4.lua',
  'createSpecAttempt-5.lua',
  'recordDecision-2.lua',
  'completeNode-4.lua',
  'confirmSpeculation-4.lua',
  'discardSpeculation-3.lua',
  'recordOutcome-2.lua',
  'markWasteBooked-1.lua',
  'closeReservation-2.lua',
  'markEndedRun-1.lua',
  'setSpendBooked-1.lua',
  'cancelRun-3.lua',
  'finishRun-2.lua',
  'reserveBudget-1.lua',
  'reserveLaunch-2.lua',
  'settleBudget-2.lua',
  'createGuessAttempt-5.lua',
  'cancelGuess-2.lua',
  'readRun-5.lua',
  'expireRun-7.lua',
  'settleEndedRun-3.lua',
  'compactRun-8.lua',
  'indexEndedRun-3.lua',
] as const;

/** Registers the run scripts on a client (idempotent). */
export function defineRunScripts(redis: RedisLike): void {
  defineScripts(redis, RUN_SCRIPT_FILES);
}

export const NODE_STATES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type NodeStateName = (typeof NODE_STATES)[number];

/** cjson writes an empty Lua table as `{}`; maps tolerate that, and absent means empty. */
const Flags = z.record(z.string(), z.number()).default({});

/** A live speculation of a node: its attempt, the decision, the guesses and which have matched. */
export const LiveSpecSchema = z.object({
  /** Speculative attempt id. */
  a: z.string(),
  /** Decision id. */
  d: z.string(),
  /** Upstream node id -> guessed output (î). */
  assumed: z.record(z.string(), z.string()),
  /** Upstream node id -> 1 once its real output matched the guess. */
  ok: Flags,
  /** Budget reserved for the launch, nano-USD (M10). */
  res: z.number().int().nonnegative(),
  /** Edge classes, comma-separated, in the order of `assumed`'s upstreams (`up=class`). */
  cls: z.string(),
  /** Decision time, ms. */
  at: z.number(),
  /** 1 once every assumed upstream has matched. */
  full: z.number().optional(),
  /**
   * M8 stream re-decision: upstream node id -> 1 where the "guess" is the output the upstream's
   * stream had already settled. Its edge's outcomes carry value but no evidence (M5, outcome
   * `evidence: false`): the class's real guess is scored by the WAIT the stream overturned.
   */
  st: Flags.optional(),
  /** 1 for a cascade (depth 2): a guess is another node's speculative result. */
  cas: z.number().optional(),
  /** Cascade: upstream -> the speculative attempt whose result is the guess (must stay live). */
  src: z.record(z.string(), z.string()).optional(),
});
export type LiveSpec = z.infer<typeof LiveSpecSchema>;

/** A speculation that ended (hit, miss, cancelled) and whose outcome may still be unsettled. */
export const ClosedSpecSchema = z.object({
  kind: z.enum(['hit', 'miss', 'cancelled']),
  d: z.string(),
  res: z.number().int().nonnegative(),
  cls: z.string(),
  at: z.number(),
  /** The upstream whose real output missed, for a miss. */
  edge: z.string().optional(),
  ok: Flags.optional(),
  /** The live speculation's `st`: upstreams the stream had settled (M8), no evidence (M5). */
  st: Flags.optional(),
  /** Nano-USD of its attempt's cost booked as the tenant's waste so far (markWasteBooked-1). */
  w: z.number().int().nonnegative().optional(),
});
export type ClosedSpec = z.infer<typeof ClosedSpecSchema>;

/** The guesses of a decision that launched nothing (M5: any WAIT reason), scored when their upstreams finish. */
export const ShadowSchema = z.object({
  d: z.string(),
  assumed: z.record(z.string(), z.string()),
  cls: z.string(),
  /** The WAIT's reason (absent on records written before every WAIT was scored: `stage`). */
  r: z.enum(DECISION_REASONS).optional(),
});

export const NodeStateSchema = z.object({
  state: z.enum(NODE_STATES),
  /** Incremented for every attempt created for the node (authoritative or speculative). */
  epoch: z.number().int().nonnegative(),
  /** The attempt whose result is (or will be) the node's output. */
  auth: z.string().optional(),
  output: z.string().optional(),
  source: z.enum(['authoritative', 'speculative']).optional(),
  error: z.string().optional(),
  startedAtMs: z.number().optional(),
  finishedAtMs: z.number().optional(),
  spec: LiveSpecSchema.optional(),
  closed: z.record(z.string(), ClosedSpecSchema).default({}),
  shadow: ShadowSchema.optional(),
  /** Decision slots already used (`runtime`, `stream`), so each trigger is decided once. */
  claims: Flags,
  /** Outcome ids already recorded. */
  outs: Flags,
});
export type NodeState = z.infer<typeof NodeStateSchema>;

export function initialNodeState(): NodeState {
  return { state: 'pending', epoch: 0, closed: {}, claims: {}, outs: {} };
}

/**
 * Parsed node states by their stored JSON (issue 13 item 1). A node's JSON changes only when a
 * script rewrites it, so on most reads of a run most of its nodes are as they were: each distinct
 * JSON is validated once, not on every reconcile (zod parsing of every node was a tenth of the
 * scheduler's own code's CPU in bench/runtime). The states are deeply frozen and may be shared
 * between runs whose nodes are alike: readers replace a node, never edit it.
 */
const nodeCache = new Map<string, { record: NodeState; outputInAttempt: boolean }>();
/** The cache's bound: entries and the characters of their keys (a parsed state is about as large again). */
const NODE_CACHE_MAX_ENTRIES = 20_000;
const NODE_CACHE_MAX_CHARS = 4_000_000;
/** A node JSON longer than this (an output kept in the node) is parsed every time, not cached. */
const NODE_CACHE_MAX_KEY_CHARS = 2_048;
let nodeCacheChars = 0;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * One node's state from its stored JSON (validated; cached by that JSON, frozen). Issue 13 item 3:
 * either stored encoding (state-codec.ts); a node whose output is kept in its auth attempt
 * (`oa`) takes it from `attemptOutput` (absent without it).
 */
export function parseNodeState(json: string, attemptOutput?: (attemptId: string) => string | undefined): NodeState {
  let n = nodeCache.get(json);
  if (n === undefined) {
    n = decodeNodeRef(json);
    deepFreeze(n.record);
    if (json.length <= NODE_CACHE_MAX_KEY_CHARS) {
      if (nodeCache.size >= NODE_CACHE_MAX_ENTRIES || nodeCacheChars + json.length > NODE_CACHE_MAX_CHARS) {
        nodeCache.clear();
        nodeCacheChars = 0;
      }
      nodeCache.set(json, n);
      nodeCacheChars += json.length;
    }
  }
  if (!n.outputInAttempt || attemptOutput === undefined || n.record.auth === undefined) return n.record;
  const output = attemptOutput(n.record.auth);
  return output === undefined ? n.record : Object.freeze({ ...n.record, output });
}

/**
 * Parses the run's `nodes` hash (HGETALL reply). `attemptOutput`: an attempt's output by id (from
 * the run's attempts), for the nodes whose output is kept there (`oa`).
 */
export function parseNodes(raw: Record<string, string>, attemptOutput?: (attemptId: string) => string | undefined): Map<string, NodeState> {
  const out = new Map<string, NodeState>();
  for (const [id, json] of Object.entries(raw)) out.set(id, parseNodeState(json, attemptOutput));
  return out;
}

function bad(file: string, reply: unknown): RedisScriptError {
  return new RedisScriptError(`${file}: unexpected reply ${JSON.stringify(reply)}`);
}

export interface RunRef {
  readonly tenant: string;
  readonly runId: string;
}

/** createRun-3.lua: the run header, its nodes' initial state and the plan decisions, at once. */
export async function createRun(
  redis: RedisLike,
  ks: KeySpace,
  r: RunRef & { header: Record<string, string | number>; nodes: Record<string, NodeState>; planDecisions: ReadonlyArray<object | string>; deadlineMs?: number },
): Promise<boolean> {
  const k = runKeys(ks, r.tenant, r.runId);
  const header = r.deadlineMs === undefined ? r.header : { ...r.header, deadlineMs: Math.floor(r.deadlineMs) };
  const reply = await callScript<number>(
    redis,
    'createRun-3.lua',
    [k.run, k.nodes, k.decisions],
    [JSON.stringify(header), JSON.stringify(r.nodes), ...r.planDecisions.map((d) => (typeof d === 'string' ? d : JSON.stringify(d)))],
  );
  if (reply === -1) throw new UnavailableError(`run ${r.tenant}/${r.runId}: the request's deadline passed before the run was written; nothing was stored`);
  return reply === 1;
}

export type LaunchResult = { readonly ok: true; readonly epoch: number } | { readonly ok: false; readonly reason: string };

function launchReply(file: string, reply: unknown): LaunchResult {
  if (!Array.isArray(reply)) throw bad(file, reply);
  if (reply[0] === 1) return { ok: true, epoch: Number(reply[1]) };
  if (reply[0] === 0) return { ok: false, reason: String(reply[1]) };
  throw bad(file, reply);
}

export interface LaunchArgs extends RunRef {
  readonly nodeId: string;
  readonly expectedEpoch: number;
  readonly attemptId: string;
  readonly attemptJson: string;
  readonly jobId: string;
  readonly intentJson: string;
  readonly nowMs: number;
}

/** launchNode-4.lua: CAS pending -> running, authoritative attempt and outbox intent at once. */
export async function launchNode(redis: RedisLike, ks: KeySpace, a: LaunchArgs): Promise<LaunchResult> {
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript(
    redis,
    'launchNode-4.lua',
    [k.run, k.nodes, k.attempts, k.intents],
    [a.nodeId, a.expectedEpoch, a.attemptId, a.attemptJson, a.jobId, a.intentJson, a.nowMs],
  );
  return launchReply('launchNode-4.lua', reply);
}

export interface SpecLaunchArgs extends LaunchArgs {
  readonly claim: string;
  readonly decisionJson: string;
  readonly spec: LiveSpec;
}

/** createSpecAttempt-5.lua: decision, speculative attempt and outbox intent at once. */
export async function createSpecAttempt(redis: RedisLike, ks: KeySpace, a: SpecLaunchArgs): Promise<LaunchResult> {
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript(
    redis,
    'createSpecAttempt-5.lua',
    [k.run, k.nodes, k.attempts, k.intents, k.decisions],
    [a.nodeId, a.expectedEpoch, a.claim, a.attemptId, a.attemptJson, a.jobId, a.intentJson, a.decisionJson, JSON.stringify(a.spec)],
  );
  return launchReply('createSpecAttempt-5.lua', reply);
}

/** createGuessAttempt-5.lua: M10 stage 1, the buy decision, the predictor's attempt and its outbox intent at once. */
export async function createGuessAttempt(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { nodeId: string; upstreamId: string; claim: string; attemptId: string; attemptJson: string; jobId: string; intentJson: string; decisionJson: string },
): Promise<boolean> {
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<number>(
    redis,
    'createGuessAttempt-5.lua',
    [k.run, k.nodes, k.attempts, k.intents, k.decisions],
    [a.nodeId, a.upstreamId, a.claim, a.attemptId, a.attemptJson, a.jobId, a.intentJson, a.decisionJson],
  );
  return reply === 1;
}

/** recordDecision-2.lua: a decision that launches nothing, once per node and claim. */
export async function recordDecision(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { nodeId: string; claim: string; decisionJson: string; shadow?: z.infer<typeof ShadowSchema> },
): Promise<boolean> {
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<number>(
    redis,
    'recordDecision-2.lua',
    [k.nodes, k.decisions],
    [a.nodeId, a.claim, a.decisionJson, a.shadow === undefined ? '' : JSON.stringify(a.shadow)],
  );
  return reply === 1;
}

export type CompleteResult =
  | { readonly code: 'completed'; readonly state: 'succeeded' | 'failed' }
  | { readonly code: 'duplicate'; readonly state: string }
  | { readonly code: 'fenced'; readonly reason: string };

/** completeNode-4.lua: accepts only the node's current authoritative attempt (M6 fencing). */
export async function completeNode(redis: RedisLike, ks: KeySpace, a: RunRef & { nodeId: string; attemptId: string; nowMs: number }): Promise<CompleteResult> {
  const file = 'completeNode-4.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(redis, file, [k.nodes, k.attempts, k.staging(a.attemptId), k.effects], [a.nodeId, a.attemptId, a.nowMs]);
  if (!Array.isArray(reply)) throw bad(file, reply);
  if (reply[0] === 1) return { code: 'completed', state: reply[1] as 'succeeded' | 'failed' };
  if (reply[0] === 2) return { code: 'duplicate', state: String(reply[1]) };
  if (reply[0] === 0) return { code: 'fenced', reason: String(reply[1]) };
  throw bad(file, reply);
}

export type ConfirmResult =
  | { readonly code: 'not_live' }
  | { readonly code: 'partial'; readonly node: NodeState }
  | { readonly code: 'waiting'; readonly node: NodeState }
  | { readonly code: 'completed'; readonly releasedEffects: number; readonly node: NodeState }
  | { readonly code: 'attempt_ended'; readonly status: string };

/**
 * confirmSpeculation-4.lua: one upstream matched; completes the node once all have and the
 * attempt succeeded. `node`: the node's state as the script wrote it.
 */
export async function confirmSpeculation(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { nodeId: string; attemptId: string; upstreamId?: string; nowMs: number },
): Promise<ConfirmResult> {
  const file = 'confirmSpeculation-4.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(
    redis,
    file,
    [k.nodes, k.attempts, k.staging(a.attemptId), k.effects],
    [a.nodeId, a.attemptId, a.upstreamId ?? '', a.nowMs],
  );
  if (!Array.isArray(reply)) throw bad(file, reply);
  switch (reply[0]) {
    case 0:
      return { code: 'not_live' };
    case 1:
      return { code: 'partial', node: parseNodeState(String(reply[1])) };
    case 2:
      return { code: 'waiting', node: parseNodeState(String(reply[1])) };
    case 3:
      return { code: 'completed', releasedEffects: Number(reply[1]), node: parseNodeState(String(reply[2])) };
    case 4:
      return { code: 'attempt_ended', status: String(reply[1]) };
    default:
      throw bad(file, reply);
  }
}

/**
 * cancelGuess-2.lua (M10): a paid guess whose upstream is no longer running becomes `cancelled`
 * (queued: finished now; running: the caller broadcasts the cancel).
 */
export async function cancelGuess(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { upstreamId: string; attemptId: string; nowMs: number },
): Promise<{ cancelled: boolean; previousStatus?: string }> {
  const file = 'cancelGuess-2.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(redis, file, [k.nodes, k.attempts], [a.upstreamId, a.attemptId, a.nowMs]);
  if (!Array.isArray(reply)) throw bad(file, reply);
  if (reply[0] === 1) return { cancelled: true, previousStatus: String(reply[1]) };
  if (reply[0] === 0) return { cancelled: false };
  throw bad(file, reply);
}

/**
 * discardSpeculation-3.lua: cancels or supersedes the attempt and deletes its staged effects
 * unreleased. `onlyIfQueued`: only a speculation whose attempt never started (else no-op).
 */
export async function discardSpeculation(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { nodeId: string; attemptId: string; kind: 'miss' | 'cancelled'; edge?: string; nowMs: number; onlyIfQueued?: boolean },
): Promise<{ discarded: boolean; previousStatus?: string }> {
  const file = 'discardSpeculation-3.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(
    redis,
    file,
    [k.nodes, k.attempts, k.staging(a.attemptId)],
    [a.nodeId, a.attemptId, a.kind, a.edge ?? '', a.nowMs, a.onlyIfQueued === true ? '1' : ''],
  );
  if (!Array.isArray(reply)) throw bad(file, reply);
  if (reply[0] === 1) return { discarded: true, previousStatus: String(reply[1]) };
  if (reply[0] === 0) return { discarded: false };
  throw bad(file, reply);
}

/** recordOutcome-2.lua: appends an outcome once per outcome id. */
export async function recordOutcome(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { nodeId: string; outcomeId: string; outcomeJson: string },
): Promise<boolean> {
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<number>(redis, 'recordOutcome-2.lua', [k.nodes, k.outcomes], [a.nodeId, a.outcomeId, a.outcomeJson]);
  return reply === 1;
}

/** cancelRun-3.lua: ends a running run; returns the attempts that were running (to broadcast cancels). */
export async function cancelRun(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { status: 'cancelled' | 'failed'; reason: string; nowMs: number },
): Promise<{ ended: boolean; runningAttempts: string[]; status?: string }> {
  const file = 'cancelRun-3.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(redis, file, [k.run, k.nodes, k.attempts], [a.status, a.reason, a.nowMs]);
  if (!Array.isArray(reply)) throw bad(file, reply);
  if (reply[0] === 1) return { ended: true, runningAttempts: reply.slice(1).map(String) };
  if (reply[0] === 0) return { ended: false, runningAttempts: [], status: String(reply[1]) };
  throw bad(file, reply);
}

/** finishRun-2.lua: marks the run succeeded once every node has. */
export async function finishRun(redis: RedisLike, ks: KeySpace, a: RunRef & { nowMs: number }): Promise<boolean> {
  const k = runKeys(ks, a.tenant, a.runId);
  return (await callScript<number>(redis, 'finishRun-2.lua', [k.run, k.nodes], [a.nowMs])) === 1;
}

/**
 * expireRun-7.lua (retention): gives every key of an ended run a TTL. Returns false when the run
 * is missing or still running.
 */
export async function expireRun(redis: RedisLike, ks: KeySpace, a: RunRef & { ttlMs: number }): Promise<boolean> {
  const k = runKeys(ks, a.tenant, a.runId);
  const keys = [k.run, k.nodes, k.attempts, k.decisions, k.outcomes, k.effects, k.intents];
  // A run compacted already has only its run hash and record left: the record keeps the hash's TTL.
  return (await callScript<number>(redis, 'expireRun-7.lua', keys, [Math.max(1, Math.round(a.ttlMs))])) >= 0;
}

/**
 * settleEndedRun-3.lua (issue 11 D1, D5): for an ended run, discards its outbox, fences queued
 * and running attempts, and finishes fenced attempts whose worker never reported within `graceMs`.
 * Undefined when the run is missing or still running.
 */
export async function settleEndedRun(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { nowMs: number; graceMs: number },
): Promise<{ changed: number; waiting: number; intentsDiscarded: number; fencedRunning: string[] } | undefined> {
  const k = runKeys(ks, a.tenant, a.runId);
  const r = await callScript<Array<number | string>>(redis, 'settleEndedRun-3.lua', [k.run, k.attempts, k.intents], [Math.round(a.nowMs), Math.max(0, Math.round(a.graceMs))]);
  if (Number(r[0]) < 0) return undefined;
  return { changed: Number(r[0]), waiting: Number(r[1]), intentsDiscarded: Number(r[2]), fencedRunning: r.slice(3).map(String) };
}

/**
 * reserveBudget-1.lua (M10): reserves a launch's price; false when the budget cannot cover it.
 * With `open`, the reservation is recorded as open under `open.id` (its settlement id when it
 * is not launched) for the recovery sweep; the tenant is indexed in `{ctl}:reservations` first
 * (a separate slot, so before the reservation exists). Close it with `closeReservation` once the
 * launch is visible in the run, or settle it under `open.id`.
 */
export async function reserveBudget(
  redis: RedisLike,
  ks: KeySpace,
  a: { tenant: string; amountNanoUsd: number; limitNanoUsd: number | undefined; open?: { id: string; runId: string; attemptId: string; atMs: number } },
): Promise<boolean> {
  const k = tenantKeys(ks, a.tenant);
  const o = a.open;
  if (o !== undefined) await redis.zadd(controlKeys(ks).reservations, 'LT', Math.round(o.atMs), a.tenant);
  const record = o === undefined ? '' : JSON.stringify({ run: o.runId, a: o.attemptId, amt: Math.round(a.amountNanoUsd), at: Math.round(o.atMs) });
  const reply = await callScript<number>(redis, 'reserveBudget-1.lua', [k.budget], [
    Math.round(a.amountNanoUsd),
    a.limitNanoUsd === undefined ? -1 : Math.round(a.limitNanoUsd),
    o?.id ?? '',
    record,
  ]);
  return reply === 1;
}

/**
 * reserveLaunch-2.lua (issue 13 item 1): `reserveBudget` with `open` and `holdSpend` of a
 * speculative launch or a paid guess in one call, both or neither: `reserved` (and held),
 * `budget` (the budget cannot cover `amountNanoUsd`) or `cap` (the spend cap cannot cover
 * `holdNanoUsd`, with the period's booked and held spend). The tenant is indexed in
 * `{ctl}:reservations` first, as `reserveBudget` does. Re-sent after a lost reply, it reserves
 * and holds once (the `open:<id>` record).
 */
export async function reserveLaunch(
  redis: RedisLike,
  ks: KeySpace,
  a: {
    tenant: string;
    amountNanoUsd: number;
    limitNanoUsd: number | undefined;
    open: { id: string; runId: string; attemptId: string; atMs: number };
    /** The spend-cap hold: its key (unique per launch try), amount, the cap (undefined: none) and its period. */
    hold: { key: string; amountNanoUsd: number; capNanoUsd: number | undefined; period: 'day' | 'month' };
  },
): Promise<{ readonly code: 'reserved' | 'budget' } | { readonly code: 'cap'; readonly bookedNanoUsd: number; readonly heldNanoUsd: number }> {
  const o = a.open;
  await redis.zadd(controlKeys(ks).reservations, 'LT', Math.round(o.atMs), a.tenant);
  const amount = Math.round(a.amountNanoUsd);
  const hold = Math.max(0, Math.ceil(a.hold.amountNanoUsd));
  const [code, booked, held] = await callScript<[number, number, number]>(redis, 'reserveLaunch-2.lua', [tenantKeys(ks, a.tenant).budget, admissionKeys(ks, a.tenant).spend], [
    amount,
    a.limitNanoUsd === undefined ? -1 : Math.round(a.limitNanoUsd),
    o.id,
    JSON.stringify({ run: o.runId, a: o.attemptId, amt: amount, at: Math.round(o.atMs) }),
    o.runId,
    a.hold.key,
    String(hold),
    a.hold.capNanoUsd === undefined ? '-1' : String(Math.round(a.hold.capNanoUsd)),
    spendPeriodField(a.hold.period, o.atMs),
    spendPeriodField('day', o.atMs),
    spendPeriodField('month', o.atMs),
  ]);
  if (code === 1) return { code: 'reserved' };
  if (code === 2) return { code: 'cap', bookedNanoUsd: Number(booked), heldNanoUsd: Number(held) };
  return { code: 'budget' };
}

/**
 * M10: the reservation's launch succeeded: it is no longer open (its outcome settles it). If the
 * recovery sweep released it meanwhile (this scheduler stalled past the grace period), it is taken
 * again, unconditionally, so the outcome's settlement releases what is reserved. The sweep never
 * releases a reservation whose attempt exists, so after the launch that check is final.
 */
export async function closeReservation(redis: RedisLike, ks: KeySpace, a: { tenant: string; runId: string; id: string; amountNanoUsd: number }): Promise<void> {
  const t = tenantKeys(ks, a.tenant);
  // Settled meanwhile: under the run, or as a marker from before they moved (`settled:<id>`).
  // Taken again in the same step (once: a re-sent call finds the marker `r`).
  await callScript<number>(redis, 'closeReservation-2.lua', [t.budget, t.settled(a.runId)], [a.id, Math.round(a.amountNanoUsd)]);
}

/**
 * settleBudget-2.lua (M10): releases a reservation and books the realized waste, once per id.
 * With `runningTotal`, `wasteNanoUsd` is the attempt's billed cost so far and the tenant is
 * booked up to it, also after the first settlement (a try billed late is booked on top, once).
 * The marker is kept under the run (`tenantKeys().settled(runId)`), deleted with its record.
 */
export async function settleBudget(
  redis: RedisLike,
  ks: KeySpace,
  a: { tenant: string; runId: string; settlementId: string; reservedNanoUsd: number; wasteNanoUsd: number; onlyIfOpen?: boolean; runningTotal?: boolean },
): Promise<boolean> {
  const k = tenantKeys(ks, a.tenant);
  const reply = await callScript<number>(
    redis,
    'settleBudget-2.lua',
    [k.budget, k.settled(a.runId)],
    [a.settlementId, Math.round(a.reservedNanoUsd), Math.round(a.wasteNanoUsd), a.onlyIfOpen === true ? '1' : '', a.runningTotal === true ? '1' : ''],
  );
  return reply === 1;
}

/**
 * indexEndedRun-3.lua (issue 13 item 3, retention): a folded run enters its tenant's `ended`
 * index and leaves admission's in-flight set; with `cutoffMs`, runs ended at or before it leave the
 * index with their budget settlement markers (at most `maxForgotten` per call). Returns the
 * number of ended runs still indexed and the number forgotten now.
 */
export async function indexEndedRun(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { endedAtMs: number; cutoffMs: number | undefined; maxForgotten: number },
): Promise<{ ended: number; forgotten: number }> {
  const t = tenantKeys(ks, a.tenant);
  const r = await callScript<[number, number]>(redis, 'indexEndedRun-3.lua', [t.ended, admissionKeys(ks, a.tenant).inflight, t.settled(a.runId)], [
    a.runId,
    Math.round(a.endedAtMs),
    a.cutoffMs === undefined ? '' : Math.round(a.cutoffMs),
    a.maxForgotten,
  ]);
  return { ended: Number(r[0]), forgotten: Number(r[1]) };
}

/**
 * markEndedRun-1.lua: marks an ended run with a once-per-run flag of its ended pass (`endNotice`:
 * its webhook was queued). Returns true when this call marked it (false: already marked, or the
 * run is missing or still running).
 */
export async function markEndedRun(redis: RedisLike, ks: KeySpace, a: RunRef & { flag: 'endNotice' }): Promise<boolean> {
  return (await callScript<number>(redis, 'markEndedRun-1.lua', [runKeys(ks, a.tenant, a.runId).run], [a.flag])) === 1;
}

/**
 * setSpendBooked-1.lua (issue 10 item 3): moves an ended run's `spendBooked` (the nano-USD of its
 * cost booked into the spend ledger) from `expected` (undefined: not set yet) to `to`, by
 * compare-and-set. Returns true when this call moved it.
 */
export async function setSpendBooked(redis: RedisLike, ks: KeySpace, a: RunRef & { expected: number | undefined; to: number }): Promise<boolean> {
  if (!Number.isSafeInteger(a.to) || a.to < 0) throw new RangeError(`spendBooked must be a non-negative integer (nano-USD), got ${a.to}`);
  const reply = await callScript<number>(redis, 'setSpendBooked-1.lua', [runKeys(ks, a.tenant, a.runId).run], [a.expected === undefined ? '' : String(a.expected), String(a.to)]);
  return reply === 1;
}

/** markWasteBooked-1.lua (M10): records on a closed speculation the waste booked for it so far. */
export async function markWasteBooked(redis: RedisLike, ks: KeySpace, a: RunRef & { nodeId: string; attemptId: string; wasteNanoUsd: number }): Promise<boolean> {
  const k = runKeys(ks, a.tenant, a.runId);
  return (await callScript<number>(redis, 'markWasteBooked-1.lua', [k.nodes], [a.nodeId, a.attemptId, Math.round(a.wasteNanoUsd)])) === 1;
}

/** The three hashes of a run as `readRun-5.lua` returns them (HGETALL replies as objects), its outbox size and its compact record. */
export interface RunHashes {
  readonly run: Record<string, string>;
  readonly nodes: Record<string, string>;
  readonly attempts: Record<string, string>;
  /** Intents in an ended run's outbox (written, not yet confirmed enqueued); undefined while it runs (not counted). */
  readonly intents: number | undefined;
  /** The compact record of a run folded by compactRun (then `nodes` and `attempts` are empty). */
  readonly record: string | undefined;
}

function fieldsOf(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/**
 * readRun-5.lua: a run's header, nodes, attempts, outbox size (and compact record) in one round
 * trip (one consistent read). `deleteIntents`: job ids of outbox intents already enqueued, deleted
 * from the outbox first in the same call (issue 13 item 1).
 */
export async function readRun(redis: RedisLike, ks: KeySpace, a: RunRef & { deleteIntents?: readonly string[] }): Promise<RunHashes> {
  defineScripts(redis, ['readRun-5.lua']);
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown>(redis, 'readRun-5.lua', [k.run, k.nodes, k.attempts, k.intents, k.rec], a.deleteIntents ?? []);
  if (!Array.isArray(reply) || reply.length !== 5) throw bad('readRun-5.lua', reply);
  return {
    run: fieldsOf(reply[0]),
    nodes: fieldsOf(reply[1]),
    attempts: fieldsOf(reply[2]),
    intents: Number(reply[3]) < 0 ? undefined : Number(reply[3]),
    record: typeof reply[4] === 'string' ? reply[4] : undefined,
  };
}

export type CompactResult = 'compacted' | 'already' | 'missing_or_running' | 'unsettled' | 'outcome_unrecorded';

/**
 * compactRun-8.lua (issue 13 item 3): folds an ended run whose every attempt is settled and whose
 * due outcomes (`dueOutcomes`: node id and outcome id) are all recorded into its compact record,
 * and deletes the rest of its keys, in one step. `keepOutputs` keeps inputs, outputs, guesses and
 * released effects in the record.
 */
export async function compactRun(
  redis: RedisLike,
  ks: KeySpace,
  a: RunRef & { keepOutputs: boolean; dueOutcomes: ReadonlyArray<readonly [string, string]> },
): Promise<CompactResult> {
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<number>(
    redis,
    'compactRun-8.lua',
    [k.run, k.nodes, k.attempts, k.decisions, k.outcomes, k.effects, k.intents, k.rec],
    [a.keepOutputs ? '1' : '0', JSON.stringify(a.dueOutcomes)],
  );
  switch (reply) {
    case 1:
      return 'compacted';
    case 0:
      return 'already';
    case -1:
      return 'missing_or_running';
    case -2:
      return 'unsettled';
    case -3:
      return 'outcome_unrecorded';
    default:
      throw bad('compactRun-8.lua', reply);
  }
}
