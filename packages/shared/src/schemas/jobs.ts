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
  enqueuedAtMs: z.number().int().nonnegative(),
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

/** The payload of `job` as it is enqueued: without what `OpJobSchema` fills back in. */
export function compactOpJob(job: OpJob): Record<string, unknown> {
  const { assumed, streamPartials, op, ...rest } = job;
  const out: Record<string, unknown> = { ...rest };
  if (op.kind === 'llm' && op.seed === `${job.runId}:${job.nodeId}`) {
    const { seed: _seed, ...opRest } = op;
    out.op = opRest;
  } else out.op = op;
  if (Object.keys(assumed).length > 0) out.assumed = assumed;
  if (streamPartials) out.streamPartials = true;
  return out;
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
