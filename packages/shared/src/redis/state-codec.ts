/**
 * How a run's attempt records (`P:{run:T:R}:attempts`) and node states (`P:{run:T:R}:nodes`) are
 * stored while the run is in flight (issue 13 item 3): the top-level fields under short names,
 * `kind` and `source` as 'A'/'S', `usage` as [inputTokens, cachedInputTokens, outputTokens(,
 * cacheWriteTokens)], an attempt's `startedAtMs`, `finishedAtMs` and `attentionAtMs` as ms after
 * its `createdAtMs`, its `attemptId` left out (the record's field in the hash: `decodeAttempt`
 * takes it; issue 13 item 3, a later step) and its `nodeId` left out when its id names it (`<node>.<suffix>`, the suffix
 * without '.') and its `kind` and `epoch` when its id says them (`<node>.a<epoch>`, `<node>.s<epoch>`),
 * a node's `finishedAtMs` as ms after its `startedAtMs` and a succeeded node's `source` when it is
 * authoritative, and what is empty or a
 * default left out (`assumed`, `closed`, `claims`, `outs` when empty; `costNanoUsd` and `tries`
 * when 0), `status`/`state` as a short code, `usageEstimated` false left out when there is usage.
 * A succeeded node's output is kept once, in the attempt it came from: the node says `oa` = 1
 * instead (completeNode-4.lua, confirmSpeculation-4.lua); `decodeNode` restores it from the attempt.
 * Nested objects (a node's `spec`, `closed` entries and `shadow`) keep their own names.
 * A finished attempt takes about 140 bytes instead of about 330, a node about 130 instead of 250. The Lua scripts use the same codec (`lua/lib/state-codec.lua`, included where a script
 * reads or writes these hashes); the two must agree. A record written before this codec (the long
 * names) decodes as it is: a run in flight across an upgrade stays readable, and its records are
 * rewritten compactly the next time a script changes them.
 */
import { type AttemptRecord, AttemptRecordSchema } from '../schemas/jobs.js';
import { type NodeState, NodeStateSchema } from './run-scripts.js';

const A_SHORT = {
  attemptId: 'i',
  nodeId: 'n',
  kind: 'k',
  epoch: 'e',
  status: 's',
  assumed: 'as',
  decisionId: 'd',
  output: 'o',
  usage: 'u',
  usageEstimated: 'ue',
  costNanoUsd: 'c',
  reservedNanoUsd: 'r',
  reservationId: 'ri',
  createdAtMs: 't',
  startedAtMs: 't0',
  finishedAtMs: 't1',
  tries: 'tr',
  billedTries: 'b',
  workerId: 'w',
  error: 'err',
  attention: 'at',
  attentionAtMs: 'atm',
  resolvedBy: 'rb',
  startKey: 'sk',
} as const satisfies Record<keyof AttemptRecord, string>;

const N_SHORT = {
  state: 's',
  epoch: 'e',
  auth: 'au',
  output: 'o',
  source: 'src',
  error: 'err',
  startedAtMs: 't0',
  finishedAtMs: 't1',
  spec: 'sp',
  closed: 'cl',
  shadow: 'sh',
  claims: 'cm',
  outs: 'ou',
} as const satisfies Record<keyof NodeState, string>;

const invert = (m: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]));
const A_LONG = invert(A_SHORT);
const N_LONG = invert(N_SHORT);
const KIND_SHORT: Record<string, string> = { authoritative: 'A', speculative: 'S' };
const KIND_LONG: Record<string, string> = { A: 'authoritative', S: 'speculative' };
/** Attempt statuses and node states (one field `s`). */
const STATUS_SHORT: Record<string, string> = { pending: 'p', queued: 'q', running: 'r', succeeded: 'ok', failed: 'f', cancelled: 'c', superseded: 'x', needs_attention: 'na' };
const STATUS_LONG = invert(STATUS_SHORT);

const isEmptyObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

/** The stored object's fields under their long names, after `compact` restored what the compact encoding derives. */
function expand(json: string, long: Record<string, string>, what: string, compact: (t: Record<string, unknown>) => void): Record<string, unknown> {
  const raw: unknown = JSON.parse(json);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${what}: stored value is not a JSON object`);
  const t = raw as Record<string, unknown>;
  compact(t);
  if (typeof t.s === 'string') t.s = STATUS_LONG[t.s] ?? t.s;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) out[long[k] ?? k] = v;
  return out;
}

/** The node id an attempt id `<node>.<suffix>` names (suffix without '.'), or undefined. */
function nodeOfAttemptId(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const dot = id.lastIndexOf('.');
  return dot <= 0 ? undefined : id.slice(0, dot);
}

/** An attempt id that says its kind and epoch (attemptIdFor: `<node>.a<epoch>`, `<node>.s<epoch>`). */
const ID_KIND_EPOCH = /\.([as])(\d+)$/;

/** An attempt's times stored after its createdAtMs (`t`). */
const A_RELATIVE = ['t0', 't1', 'atm'] as const;

/** The stored text of an attempt record. */
export function encodeAttempt(a: AttemptRecord): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined || v === null) continue;
    if (k === 'assumed' && isEmptyObject(v)) continue;
    if ((k === 'costNanoUsd' || k === 'tries') && v === 0) continue;
    const short = (A_SHORT as Record<string, string>)[k] ?? k;
    if (k === 'kind') out[short] = KIND_SHORT[v as string] ?? v;
    else if (k === 'usage') {
      const u = v as NonNullable<AttemptRecord['usage']>;
      out[short] = u.cacheWriteTokens === undefined ? [u.inputTokens, u.cachedInputTokens, u.outputTokens] : [u.inputTokens, u.cachedInputTokens, u.outputTokens, u.cacheWriteTokens];
    } else out[short] = v;
  }
  if (typeof out.s === 'string') out.s = STATUS_SHORT[out.s] ?? out.s;
  if (out.ue === false && out.u !== undefined) delete out.ue;
  if (typeof out.t === 'number') for (const f of A_RELATIVE) if (typeof out[f] === 'number') out[f] = (out[f] as number) - (out.t as number);
  if (out.n !== undefined && out.n === nodeOfAttemptId(out.i)) delete out.n;
  const m = typeof out.i === 'string' && out.t !== undefined ? ID_KIND_EPOCH.exec(out.i) : null;
  if (m !== null && out.k === (m[1] === 'a' ? 'A' : 'S')) {
    delete out.k;
    if (out.e === Number(m[2])) delete out.e;
  }
  // The attempt id is the record's field in the attempts hash (decodeAttempt takes it).
  if (out.t !== undefined) delete out.i;
  return JSON.stringify(out);
}

/**
 * An attempt record from its stored text, either encoding (validated: an invalid one is an error).
 * `attemptId`: its field in the attempts hash (a compact record leaves its id out).
 */
export function decodeAttempt(json: string, attemptId: string): AttemptRecord {
  const a = expand(json, A_LONG, 'attempt record', (t) => {
    if (t.i === undefined && t.attemptId === undefined) t.i = attemptId;
    if (typeof t.t !== 'number') return;
    for (const f of A_RELATIVE) if (typeof t[f] === 'number') t[f] = (t.t as number) + (t[f] as number);
    if (t.n === undefined && t.i !== undefined) t.n = nodeOfAttemptId(t.i);
    if (t.k === undefined && typeof t.i === 'string') {
      const m = ID_KIND_EPOCH.exec(t.i);
      if (m !== null) {
        t.k = m[1] === 'a' ? 'A' : 'S';
        if (t.e === undefined) t.e = Number(m[2]);
      }
    }
    if (t.u !== undefined && t.ue === undefined) t.ue = false;
  });
  if (typeof a.kind === 'string' && KIND_LONG[a.kind] !== undefined) a.kind = KIND_LONG[a.kind];
  if (Array.isArray(a.usage)) {
    const u = a.usage as number[];
    a.usage = { inputTokens: u[0], cachedInputTokens: u[1], outputTokens: u[2], ...(u[3] === undefined ? {} : { cacheWriteTokens: u[3] }) };
  }
  if (a.assumed === undefined) a.assumed = {};
  return AttemptRecordSchema.parse(a);
}

/** The stored text of a node state. */
export function encodeNode(n: NodeState): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(n)) {
    if (v === undefined || v === null) continue;
    if ((k === 'closed' || k === 'claims' || k === 'outs') && isEmptyObject(v)) continue;
    const short = (N_SHORT as Record<string, string>)[k] ?? k;
    out[short] = k === 'source' ? (KIND_SHORT[v as string] ?? v) : v;
  }
  if (typeof out.s === 'string') out.s = STATUS_SHORT[out.s] ?? out.s;
  // A succeeded node's source is authoritative unless it says otherwise ('' = none).
  if (out.s === 'ok') {
    if (out.src === 'A') delete out.src;
    else if (out.src === undefined) out.src = '';
  }
  if (typeof out.t0 === 'number' && typeof out.t1 === 'number') out.t1 = out.t1 - out.t0;
  return JSON.stringify(out);
}

/**
 * A node state from its stored text, either encoding (validated). A succeeded node whose output
 * is kept in its auth attempt only (`oa`, set when it completed from it) gets it from
 * `attemptOutput` (an attempt's output by attempt id); without it, its output is absent.
 */
export function decodeNode(json: string, attemptOutput?: (attemptId: string) => string | undefined): NodeState {
  const { record, outputInAttempt } = decodeNodeRef(json);
  if (!outputInAttempt || attemptOutput === undefined || record.auth === undefined) return record;
  const o = attemptOutput(record.auth);
  return o === undefined ? record : { ...record, output: o };
}

/** A node state from its stored text, and whether its output is its auth attempt's (`oa`: not in the record). */
export function decodeNodeRef(json: string): { record: NodeState; outputInAttempt: boolean } {
  const n = expand(json, N_LONG, 'node state', (t) => {
    if (typeof t.t0 === 'number' && typeof t.t1 === 'number' && t.s !== undefined) t.t1 = t.t0 + t.t1;
    if (t.s === 'ok') {
      if (t.src === undefined) t.src = 'A';
      else if (t.src === '') delete t.src;
    }
  });
  if (typeof n.source === 'string' && KIND_LONG[n.source] !== undefined) n.source = KIND_LONG[n.source];
  const outputInAttempt = n.oa === 1;
  delete n.oa;
  return { record: NodeStateSchema.parse(n), outputInAttempt };
}
