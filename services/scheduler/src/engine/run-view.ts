/**
 * Reads one run's state from Redis (header, workflow, nodes, attempts) into a validated snapshot,
 * and the graph helpers the engine uses on it. All keys are in the run's hash tag, so the three
 * hashes are read by one script (one round trip, one slot).
 */
import {
  type AttemptRecord,
  type Edge,
  type Workflow,
  WorkflowSchema,
  type WorkflowNode,
} from '@gambit/shared';
import { createHash } from 'node:crypto';
import { decodeAttempt, expandRunRecord, type KeySpace, type NodeState, parseNodes, type RedisLike, readRun, runKeys, tenantKeys } from '@gambit/shared/redis';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface RunHeader {
  readonly tenant: string;
  readonly runId: string;
  readonly workflowName: string;
  readonly status: RunStatus;
  readonly inputs: Record<string, unknown>;
  /** Run override of α (M3), or undefined to use the tenant's. */
  readonly alpha: number | undefined;
  readonly lambdaUsdPerSec: number | undefined;
  readonly speculation: boolean;
  readonly createdAtMs: number;
  readonly finishedAtMs: number | undefined;
  readonly reason: string | undefined;
  /** W3C trace-context carrier of the run's root span (one trace per run). */
  readonly trace: Record<string, string> | undefined;
  /** Issue 10 item 4: the tenant's operation deadline when the run was submitted (undefined on older runs: the worker's cap applies). */
  readonly opTimeoutMs?: number | undefined;
  /** An ended run: the nano-USD of its cost booked into the spend ledger (setSpendBooked-1), once booked. */
  readonly spendBookedNanoUsd?: number | undefined;
  /** An ended run: its end was handed to the webhook queue (markEndedRun-1 `endNotice`). */
  readonly endNotice?: boolean;
}

export interface RunSnapshot {
  readonly header: RunHeader;
  readonly workflow: Workflow;
  readonly nodes: Map<string, NodeState>;
  readonly attempts: Map<string, AttemptRecord>;
  readonly graph: Graph;
  /** Intents in the outbox of an ended run when it was read (undefined: not known, e.g. running). */
  readonly intents?: number;
  /**
   * Set when the run was folded into its compact record (issue 13 item 3): its lists come from the
   * record, and its nodes carry no claims or outcome flags (everything was settled before the fold).
   */
  readonly compact?: CompactLists;
}

/** What a compacted run holds besides its node and attempt summaries. */
export interface CompactLists {
  readonly decisions: readonly string[];
  readonly outcomes: readonly string[];
  readonly effects: readonly string[];
  readonly effectCount: number;
  readonly outputsKept: boolean;
}

export interface Graph {
  readonly byId: Map<string, WorkflowNode>;
  /** node -> incoming edges */
  readonly incoming: Map<string, Edge[]>;
  /** node -> outgoing edges */
  readonly outgoing: Map<string, Edge[]>;
}

const graphCache = new WeakMap<Workflow, Graph>();

export function graphOf(wf: Workflow): Graph {
  let g = graphCache.get(wf);
  if (g !== undefined) return g;
  const byId = new Map(wf.nodes.map((n) => [n.id, n]));
  const incoming = new Map<string, Edge[]>(wf.nodes.map((n) => [n.id, []]));
  const outgoing = new Map<string, Edge[]>(wf.nodes.map((n) => [n.id, []]));
  for (const e of wf.edges) {
    incoming.get(e.to)?.push(e);
    outgoing.get(e.from)?.push(e);
  }
  g = { byId, incoming, outgoing };
  graphCache.set(wf, g);
  return g;
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Workflows are parsed once per process per definition, keyed by the stored JSON: a run's
 * definition never changes after submit, and the runs of one workflow share one parse (and one
 * graph). Never edited in place.
 */
const wfCache = new Map<string, Workflow>();

/** Prefix of the run header's trace-context fields: `trace:<carrier key>` = value (issue 13 item 3). */
export const TRACE_FIELD_PREFIX = 'trace:';

/** The header fields of a trace carrier: one per entry, each value short (a traceparent is 55 bytes). */
export function traceHeaderFields(carrier: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(carrier)) out[`${TRACE_FIELD_PREFIX}${k}`] = v;
  return out;
}

/**
 * The trace carrier of a run header: the `trace:<key>` fields, or the one `trace` JSON field of a
 * header written before issue 13 item 3 (a run in flight across the upgrade).
 */
export function traceOfHeader(h: Record<string, string>): Record<string, string> | undefined {
  if (h.trace !== undefined) return JSON.parse(h.trace) as Record<string, string>;
  let carrier: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(h)) {
    if (!k.startsWith(TRACE_FIELD_PREFIX)) continue;
    carrier ??= {};
    carrier[k.slice(TRACE_FIELD_PREFIX.length)] = v;
  }
  return carrier;
}

export function parseHeader(h: Record<string, string>): RunHeader {
  return {
    tenant: h.tenant ?? '',
    runId: h.runId ?? '',
    workflowName: h.workflowName ?? '',
    status: (h.status ?? 'running') as RunStatus,
    inputs: JSON.parse(h.inputs ?? '{}') as Record<string, unknown>,
    alpha: num(h.alpha),
    lambdaUsdPerSec: num(h.lambdaUsdPerSec),
    speculation: h.speculation !== '0',
    createdAtMs: num(h.createdAtMs) ?? 0,
    finishedAtMs: num(h.finishedAtMs),
    reason: h.reason,
    trace: traceOfHeader(h),
    opTimeoutMs: num(h.opTimeoutMs),
    spendBookedNanoUsd: num(h.spendBooked),
    endNotice: h.endNotice === '1',
  };
}

/**
 * Parsed attempt records by their stored JSON. An attempt's JSON only changes when a script
 * rewrites it, so an unchanged record (most of a run's attempts on most reads) is validated once,
 * not on every reconcile. The records are frozen: the engine replaces, never edits, them.
 */
const attemptCache = new Map<string, AttemptRecord>();

function parseAttempt(id: string, json: string): AttemptRecord {
  // By id and text: a compact record leaves its id out (two attempts may store the same text).
  const key = `${id}\u0000${json}`;
  let a = attemptCache.get(key);
  if (a === undefined) {
    a = Object.freeze(decodeAttempt(json, id));
    if (attemptCache.size > 20_000) attemptCache.clear();
    attemptCache.set(key, a);
  }
  return a;
}

/**
 * Issue 13 item 3: a run's header holds its workflow definition by reference, the content hash of
 * the definition's JSON (SHA-256, 32 hex digits), and the definition itself is stored once per
 * tenant in `tenantKeys(ks, T).workflowDefs`, so runs of one workflow share one copy.
 */
export function workflowDefRef(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 32);
}

/** Parsed definitions by tenant and reference (a reference names one content, never edited). */
const wfRefCache = new Map<string, Workflow>();

/** The parsed definition of `json` (whose reference is `ref`), through the same cache as runs read from Redis. */
function workflowOfJson(tenant: string, ref: string, json: string): Workflow {
  const ck = `${tenant}\u0000${ref}`;
  let workflow = wfRefCache.get(ck);
  if (workflow !== undefined) return workflow;
  workflow = WorkflowSchema.parse(JSON.parse(json));
  if (wfRefCache.size > 1_000) wfRefCache.clear();
  wfRefCache.set(ck, workflow);
  return workflow;
}

async function workflowByRef(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, ref: string): Promise<Workflow> {
  const ck = `${tenant}\u0000${ref}`;
  const workflow = wfRefCache.get(ck);
  if (workflow !== undefined) return workflow;
  const key = tenantKeys(ks, tenant).workflowDefs;
  const json = await redis.hget(key, ref);
  // No silent fallback: a run whose definition is gone cannot be advanced or shown.
  if (json === null || json === undefined) throw new Error(`run ${tenant}/${runId}: its workflow definition ${ref} is missing from ${key}`);
  return workflowOfJson(tenant, ref, json);
}

/**
 * Issue 13 item 1: the snapshot of a run its submit has just written (createRun-3.lua created
 * it), as `loadRun` would read it then: header fields as the script stores them (Lua's
 * `tostring`: numbers to 14 significant digits), every node in its initial state, no attempts.
 * The submit's first reconcile starts from it instead of reading the run back.
 */
export function newRunSnapshot(a: { header: Record<string, string | number>; workflowRef: string; workflowJson: string; nodes: Record<string, NodeState> }): RunSnapshot {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(a.header)) h[k] = typeof v === 'number' ? String(Number(v.toPrecision(14))) : v;
  const header = parseHeader(h);
  const workflow = workflowOfJson(header.tenant, a.workflowRef, a.workflowJson);
  const nodes = parseNodes(Object.fromEntries(Object.entries(a.nodes).map(([id, st]) => [id, JSON.stringify(st)])));
  return { header, workflow, nodes, attempts: new Map(), graph: graphOf(workflow) };
}

/**
 * The run, or undefined when it does not exist. `deleteIntents`: outbox intents already enqueued,
 * deleted in the same call before the read (Outbox.takeDeferred).
 */
export async function loadRun(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, deleteIntents?: readonly string[]): Promise<RunSnapshot | undefined> {
  const { run: hRaw, nodes: nRaw, attempts: aRaw, intents, record } = await readRun(redis, ks, { tenant, runId, ...(deleteIntents === undefined || deleteIntents.length === 0 ? {} : { deleteIntents }) });
  let workflow: Workflow | undefined;
  if (hRaw.workflowRef !== undefined) workflow = await workflowByRef(redis, ks, tenant, runId, hRaw.workflowRef);
  else if (hRaw.workflow !== undefined) {
    // Runs created before definitions were stored by reference hold the JSON in their header.
    workflow = wfCache.get(hRaw.workflow);
    if (workflow === undefined) {
      workflow = WorkflowSchema.parse(JSON.parse(hRaw.workflow));
      if (wfCache.size > 1_000) wfCache.clear();
      wfCache.set(hRaw.workflow, workflow);
    }
  }
  if (workflow === undefined) return undefined;
  if (record !== undefined) {
    const header = parseHeader({ ...hRaw, tenant, runId });
    const x = expandRunRecord(record, header.createdAtMs, `run ${tenant}/${runId}`);
    const compact: CompactLists = { decisions: x.decisions, outcomes: x.outcomes, effects: x.effects, effectCount: x.effectCount, outputsKept: x.outputsKept };
    return { header, workflow, nodes: x.nodes, attempts: x.attempts, graph: graphOf(workflow), intents: 0, compact };
  }
  const attempts = new Map<string, AttemptRecord>();
  for (const [id, json] of Object.entries(aRaw)) attempts.set(id, parseAttempt(id, json));
  // Issue 13 item 3: a succeeded node's output is kept in its auth attempt (`oa`).
  const nodes = parseNodes(nRaw, (id) => attempts.get(id)?.output);
  return { header: parseHeader(hRaw), workflow, nodes, attempts, graph: graphOf(workflow), ...(intents === undefined ? {} : { intents }) };
}

/**
 * A run's decision records, outcomes and released effects (JSON texts) from `from` on: from its
 * lists while it has them, from its compact record once folded (issue 13 item 3).
 */
export async function runLists(
  redis: RedisLike,
  ks: KeySpace,
  s: RunSnapshot,
  from: { decisions?: number; outcomes?: number; effects?: number } = {},
): Promise<{ decisions: readonly string[]; outcomes: readonly string[]; effects: readonly string[] }> {
  const c = s.compact;
  if (c !== undefined) return { decisions: c.decisions.slice(from.decisions ?? 0), outcomes: c.outcomes.slice(from.outcomes ?? 0), effects: c.effects.slice(from.effects ?? 0) };
  const k = runKeys(ks, s.header.tenant, s.header.runId);
  // One transaction (every key in the run's slot) with the record: a run folded after `s` was
  // read has no lists any more, and its lists are then read from the record it was folded into
  // (three separate reads could straddle the fold and come back empty).
  const replies = await redis
    .multi()
    .lrange(k.decisions, from.decisions ?? 0, -1)
    .lrange(k.outcomes, from.outcomes ?? 0, -1)
    .lrange(k.effects, from.effects ?? 0, -1)
    .get(k.rec)
    .exec();
  if (replies === null) throw new Error(`run ${s.header.tenant}/${s.header.runId}: reading its lists was aborted`);
  for (const [err] of replies) if (err !== null) throw err;
  const [decisions, outcomes, effects, rec] = replies.map(([, v]) => v) as [string[], string[], string[], string | null];
  if (rec !== null) {
    const x = expandRunRecord(rec, s.header.createdAtMs, `run ${s.header.tenant}/${s.header.runId}`);
    return { decisions: x.decisions.slice(from.decisions ?? 0), outcomes: x.outcomes.slice(from.outcomes ?? 0), effects: x.effects.slice(from.effects ?? 0) };
  }
  return { decisions, outcomes, effects };
}

/** Outputs of the succeeded nodes (the template context's `nodes.X.output`). */
export function outputsOf(s: RunSnapshot): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, n] of s.nodes) if (n.state === 'succeeded' && n.output !== undefined) out[id] = n.output;
  return out;
}

/** When the node would have been ready without speculation: its last upstream's finish (ms). */
export function readyAtMs(s: RunSnapshot, nodeId: string): number | undefined {
  let t = 0;
  for (const e of s.graph.incoming.get(nodeId) ?? []) {
    const u = s.nodes.get(e.from);
    if (u?.state !== 'succeeded' || u.finishedAtMs === undefined) return undefined;
    t = Math.max(t, u.finishedAtMs);
  }
  return t === 0 ? s.header.createdAtMs : t;
}
