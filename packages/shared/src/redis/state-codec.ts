/**
 * How a run's attempt records (`P:{run:T:R}:attempts`) and node states (`P:{run:T:R}:nodes`) are
 * stored while the run is in flight (issue 13 item 3): the top-level fields under short names,
 * `kind` and `source` as 'A'/'S', `usage` as [inputTokens, cachedInputTokens, outputTokens(,
 * cacheWriteTokens)], and what is empty or a default left out (`assumed`, `closed`, `claims`,
 * `outs` when empty; `costNanoUsd` and `tries` when 0). Nested objects (a node's `spec`, `closed`
 * entries and `shadow`) keep their own names. An attempt takes about 150 bytes instead of about
 * 330. The Lua scripts use the same codec (`lua/lib/state-codec.lua`, included where a script
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

const isEmptyObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;

function expand(json: string, long: Record<string, string>, what: string): Record<string, unknown> {
  const raw: unknown = JSON.parse(json);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${what}: stored value is not a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) out[long[k] ?? k] = v;
  return out;
}

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
  return JSON.stringify(out);
}

/** An attempt record from its stored text, either encoding (validated: an invalid one is an error). */
export function decodeAttempt(json: string): AttemptRecord {
  const a = expand(json, A_LONG, 'attempt record');
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
  return JSON.stringify(out);
}

/** A node state from its stored text, either encoding (validated). */
export function decodeNode(json: string): NodeState {
  const n = expand(json, N_LONG, 'node state');
  if (typeof n.source === 'string' && KIND_LONG[n.source] !== undefined) n.source = KIND_LONG[n.source];
  return NodeStateSchema.parse(n);
}
