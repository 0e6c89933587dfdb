/**
 * The protocol between scheduler and worker (ARCHITECTURE.md): BullMQ job payloads, the attempt
 * record kept in Redis, and the events that advance a run. Every payload is validated with these
 * schemas where it is received; an invalid one fails the job as non-retryable.
 */
import { z } from 'zod';
import { EFFECTS } from '../core/types.js';
import { SimulationSchema } from './workflow.js';

export const ATTEMPT_KINDS = ['authoritative', 'speculative'] as const;
export type AttemptKind = (typeof ATTEMPT_KINDS)[number];

/**
 * `needs_attention` (issue 11 D2): an irreversible operation whose earlier try may have started,
 * with no idempotency key to retry under. Nothing runs it again; an operator resolves it through
 * the API as succeeded (with its output) or failed, and the run goes on from there.
 */
export const ATTEMPT_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded', 'needs_attention'] as const;
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];

export const TokenUsageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  cachedInputTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative().optional(),
  outputTokens: z.number().int().nonnegative(),
});

/** The operation, fully rendered by the scheduler: the worker needs no run state to execute it. */
export const OpSpecSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('llm'),
    provider: z.string(),
    model: z.string(),
    system: z.string().optional(),
    prompt: z.string(),
    maxTokens: z.number().int().positive(),
    simulate: SimulationSchema.optional(),
    /** Deterministic seed for the simulated provider (same input => same output). */
    seed: z.string(),
  }),
  z.object({
    kind: z.literal('tool'),
    tool: z.string(),
    args: z.record(z.string(), z.unknown()),
    effects: z.enum(EFFECTS),
    priceUsd: z.number().nonnegative(),
  }),
]);
export type OpSpec = z.infer<typeof OpSpecSchema>;

/**
 * Issue 13 item 3: a job payload leaves out what the worker fills in (`compactOpJob`): an empty
 * `assumed`, `streamPartials` false, and an LLM operation's `seed` when it is `<runId>:<nodeId>`
 * (renderOp's). A payload with them (written before) parses the same.
 */
function fillOpJob(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const j = v as Record<string, unknown>;
  const op = j.op as Record<string, unknown> | undefined;
  if (op === undefined || op === null || typeof op !== 'object' || op.kind !== 'llm' || op.seed !== undefined) return v;
  return { ...j, op: { ...op, seed: `${String(j.runId)}:${String(j.nodeId)}` } };
}

const OpJobObjectSchema = z.object({
  v: z.literal(1),
  tenant: z.string(),
  runId: z.string(),
  workflow: z.string(),
  nodeId: z.string(),
  attemptId: z.string(),
  epoch: z.number().int().nonnegative(),
  kind: z.enum(ATTEMPT_KINDS),
  op: OpSpecSchema,
  /** Upstream outputs this attempt assumed (the guesses, for a speculative attempt); absent: none. */
  assumed: z.record(z.string(), z.string()).default({}),
  /** Publish partial output (streaming re-estimation, M8) while running; absent: false. */
  streamPartials: z.boolean().default(false),
  /** W3C trace context carrier, so traces follow the run across processes. */
  trace: z.record(z.string(), z.string()).optional(),
  /** When the scheduler planned the job. No longer written (issue 13 item 3: nothing read it); kept readable. */
  enqueuedAtMs: z.number().int().nonnegative().optional(),
  /** M4 operation class of the node (core/operation-class.ts): the worker records the finished operation under it. */
  opClass: z.string().min(1).max(125).optional(),
  /**
   * Issue 10 item 4: the operation's deadline, ms of one try (the node's `timeoutMs`, else the
   * tenant's `opTimeoutMs`); the worker aborts the try when it passes and fails the attempt with
   * DEADLINE_EXCEEDED. Capped by the worker's WORKER_MAX_OP_TIMEOUT_MS (which also applies when absent).
   */
  timeoutMs: z.number().int().positive().optional(),
});
export const OpJobSchema = z.preprocess(fillOpJob, OpJobObjectSchema);
export type OpJob = z.infer<typeof OpJobSchema>;

/** The node id an attempt id `<node>.<suffix>` names (suffix without '.'), or undefined (as the state codec's). */
function nodeOfAttemptId(id: string): string | undefined {
  const dot = id.lastIndexOf('.');
  return dot <= 0 ? undefined : id.slice(0, dot);
}

/** The epoch an attempt id of `kind` says (attemptIdFor: `<node>.a<epoch>`, `<node>.s<epoch>`), or undefined. */
function epochOfAttemptId(id: string, kind: AttemptKind): number | undefined {
  const m = /\.([as])(\d+)$/.exec(id);
  return m === null || m[1] !== (kind === 'authoritative' ? 'a' : 's') ? undefined : Number(m[2]);
}

/** The operation class's part an operation says (`llm:<provider>/<model>`, `tool:<tool>`); the stored class may leave it out. */
function opClassPrefix(op: unknown): string | undefined {
  if (typeof op !== 'object' || op === null) return undefined;
  const o = op as Record<string, unknown>;
  if (o.kind === 'llm' && typeof o.provider === 'string' && typeof o.model === 'string') return `llm:${o.provider}/${o.model}`;
  if (o.kind === 'tool' && typeof o.tool === 'string') return `tool:${o.tool}`;
  return undefined;
}

/** The parts of a job id `<tenant>~<runId>~<attemptId>` (jobIdFor: tenant and run ids have no '~'), or undefined. */
function jobIdParts(jobId: string | undefined): { tenant: string; runId: string; attemptId: string } | undefined {
  if (jobId === undefined) return undefined;
  const a = jobId.indexOf('~');
  const b = a < 0 ? -1 : jobId.indexOf('~', a + 1);
  if (a <= 0 || b <= a + 1 || b === jobId.length - 1) return undefined;
  return { tenant: jobId.slice(0, a), runId: jobId.slice(a + 1, b), attemptId: jobId.slice(b + 1) };
}

/**
 * The payload of `job` as it is enqueued (issue 13 item 3), without what the worker fills back in
 * (`expandOpJob`): an empty `assumed`, `streamPartials` false, an LLM operation's `seed` when it is
 * `<runId>:<nodeId>`; `v`; `kind` (the lane says it: `ops` authoritative, `spec` speculative);
 * `tenant`, `runId` and `attemptId` when `jobId` is `<tenant>~<runId>~<attemptId>`, then `nodeId`
 * and `epoch` when the attempt id says them (`<node>.a<epoch>`); the operation class's
 * `llm:<provider>/<model>` (`tool:<tool>`) part when the operation says it; the trace carrier as
 * its `traceparent` alone when that is all it holds. The job must be enqueued under `jobId` on the
 * lane of its kind.
 */
export function compactOpJob(job: OpJob, jobId?: string): Record<string, unknown> {
  const { assumed, streamPartials, op, v: _v, kind: _kind, ...rest } = job;
  const out: Record<string, unknown> = { ...rest };
  if (jobId !== undefined && jobId === `${job.tenant}~${job.runId}~${job.attemptId}` && jobIdParts(jobId)?.attemptId === job.attemptId) {
    delete out.tenant;
    delete out.runId;
    delete out.attemptId;
    if (nodeOfAttemptId(job.attemptId) === job.nodeId) delete out.nodeId;
    if (epochOfAttemptId(job.attemptId, job.kind) === job.epoch) delete out.epoch;
  }
  if (op.kind === 'llm' && op.seed === `${job.runId}:${job.nodeId}`) {
    const { seed: _seed, ...opRest } = op;
    out.op = opRest;
  } else out.op = op;
  const prefix = opClassPrefix(op);
  if (job.opClass !== undefined && prefix !== undefined && job.opClass.startsWith(`${prefix}#`)) out.opClass = job.opClass.slice(prefix.length);
  if (job.trace !== undefined) {
    const keys = Object.keys(job.trace);
    if (keys.length === 1 && keys[0] === 'traceparent') out.trace = job.trace.traceparent;
  }
  if (Object.keys(assumed).length > 0) out.assumed = assumed;
  if (streamPartials) out.streamPartials = true;
  return out;
}

/**
 * A job payload with what `compactOpJob` left out filled back in from the BullMQ job: its id
 * (`<tenant>~<runId>~<attemptId>`) and the kind of its lane; then `OpJobSchema` fills the rest. A
 * payload that carries a field keeps it (written before issue 13 item 3's job ids, or not
 * derivable); one whose job id does not have that form gets no ids from it.
 */
export function expandOpJob(data: unknown, job: { readonly jobId?: string; readonly kind: AttemptKind }): unknown {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  const j: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  j.v ??= 1;
  j.kind ??= job.kind;
  const ids = jobIdParts(job.jobId);
  if (ids !== undefined && j.tenant === undefined && j.runId === undefined && j.attemptId === undefined) {
    j.tenant = ids.tenant;
    j.runId = ids.runId;
    j.attemptId = ids.attemptId;
  }
  if (typeof j.attemptId === 'string') {
    j.nodeId ??= nodeOfAttemptId(j.attemptId);
    if (j.epoch === undefined && (j.kind === 'authoritative' || j.kind === 'speculative')) j.epoch = epochOfAttemptId(j.attemptId, j.kind);
  }
  if (typeof j.opClass === 'string' && j.opClass.startsWith('#')) {
    const prefix = opClassPrefix(j.op);
    if (prefix !== undefined) j.opClass = `${prefix}${j.opClass}`;
  }
  if (typeof j.trace === 'string') j.trace = { traceparent: j.trace };
  return j;
}

/** An attempt as stored in the run's `attempts` hash. Money is integer nano-dollars. */
export const AttemptRecordSchema = z.object({
  attemptId: z.string(),
  nodeId: z.string(),
  kind: z.enum(ATTEMPT_KINDS),
  epoch: z.number().int().nonnegative(),
  status: z.enum(ATTEMPT_STATUSES),
  /** Upstream outputs this attempt assumed. */
  assumed: z.record(z.string(), z.string()),
  decisionId: z.string().optional(),
  output: z.string().optional(),
  usage: TokenUsageSchema.optional(),
  usageEstimated: z.boolean().optional(),
  costNanoUsd: z.number().int().nonnegative().default(0),
  /** M10: price reserved in the tenant's budget for this attempt (a paid guess), settled once under `<run>:<attempt>`. */
  reservedNanoUsd: z.number().int().nonnegative().optional(),
  /**
   * M10: the id of the budget reservation (`open:<id>`) whose launch created this attempt. The
   * recovery sweep drops an open reservation only when its attempt carries its id: a competing
   * scheduler's launch under the same attempt id does not stand for it.
   */
  reservationId: z.string().optional(),
  createdAtMs: z.number().int().nonnegative(),
  startedAtMs: z.number().int().nonnegative().optional(),
  finishedAtMs: z.number().int().nonnegative().optional(),
  tries: z.number().int().nonnegative().default(0),
  /** Try numbers whose usage and cost are already billed (finishAttempt/failAttempt: once per try). */
  billedTries: z.array(z.number().int().positive()).optional(),
  workerId: z.string().optional(),
  error: z.string().optional(),
  /** Why the attempt needs an operator (status `needs_attention`), kept after it is resolved. */
  attention: z.string().optional(),
  attentionAtMs: z.number().int().nonnegative().optional(),
  /** `operator` once an operator resolved a `needs_attention` attempt through the API. */
  resolvedBy: z.literal('operator').optional(),
  /**
   * The key of the try now running (startAttempt-2.lua: unique per call), so that a call ioredis
   * re-sends after its reply was lost starts no second try; cleared when the try records its result.
   */
  startKey: z.string().optional(),
});
export type AttemptRecord = z.infer<typeof AttemptRecordSchema>;

/** Events on the `advance` queue; any scheduler may process any of them (idempotent steps). */
export const AdvanceEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('attempt_finished'),
    tenant: z.string(),
    runId: z.string(),
    nodeId: z.string(),
    attemptId: z.string(),
    epoch: z.number().int().nonnegative(),
  }),
  z.object({
    type: z.literal('partial'),
    tenant: z.string(),
    runId: z.string(),
    nodeId: z.string(),
    attemptId: z.string(),
    /** The whole output streamed so far (not a delta), so events can be coalesced or reordered. */
    text: z.string(),
    seq: z.number().int().nonnegative(),
  }),
  z.object({
    type: z.literal('kick'),
    tenant: z.string(),
    runId: z.string(),
    reason: z.string(),
  }),
]);
export type AdvanceEvent = z.infer<typeof AdvanceEventSchema>;

/** Broadcast on the cancel channel; every worker aborts the attempt if it runs it. */
export const CancelMessageSchema = z.object({
  tenant: z.string(),
  runId: z.string(),
  attemptId: z.string(),
  reason: z.string(),
});
export type CancelMessage = z.infer<typeof CancelMessageSchema>;
