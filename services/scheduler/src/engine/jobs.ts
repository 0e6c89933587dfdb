/**
 * Builds what a launch writes: the attempt record (status `queued`), the fully rendered job
 * payload (OpJob: the worker needs no run state), and the outbox intent that names the queue,
 * the deterministic job id and the options. Deterministic ids make every enqueue idempotent.
 */
import {
  type AttemptKind,
  type AttemptRecord,
  compactOpJob,
  type OpJob,
  type OpSpec,
  operationClassOf,
  renderTemplate,
  type WorkflowNode,
} from '@gambit/shared';
import { QUEUES } from '@gambit/shared/redis';
import { z } from 'zod';
import { guessAttemptId } from '../predictors/llm.js';

/** Attempt ids are unique per node: the epoch that created them, and the kind. */
export function attemptIdFor(nodeId: string, epoch: number, kind: AttemptKind): string {
  return `${nodeId}.${kind === 'authoritative' ? 'a' : 's'}${epoch}`;
}

/** BullMQ job ids may not contain ':'; tenant and run ids are restricted to [A-Za-z0-9_.-]. */
export function jobIdFor(tenant: string, runId: string, attemptId: string): string {
  return `${tenant}~${runId}~${attemptId}`;
}

export const IntentSchema = z.object({
  queue: z.enum([QUEUES.ops, QUEUES.spec]),
  jobId: z.string(),
  name: z.string(),
  data: z.unknown(),
  priority: z.number().int().optional(),
  createdAtMs: z.number(),
  /** The launch call's spend hold key (launchNode-4.lua: a re-sent call recognises its own intent). */
  k: z.string().optional(),
});
export type Intent = z.infer<typeof IntentSchema>;

/** The operation with templates rendered on `outputs` (real upstream outputs, plus guesses for a speculation). */
export function renderOp(node: WorkflowNode, ctx: { runId: string; inputs: Record<string, unknown>; outputs: Record<string, string> }): OpSpec {
  const tctx = { inputs: ctx.inputs, outputs: ctx.outputs };
  if (node.kind === 'llm') {
    const simulate =
      node.simulate === undefined
        ? undefined
        : { ...node.simulate, ...(node.simulate.output === undefined ? {} : { output: renderTemplate(node.simulate.output, tctx) }) };
    return {
      kind: 'llm',
      provider: node.provider,
      model: node.model,
      ...(node.system === undefined ? {} : { system: renderTemplate(node.system, tctx) }),
      prompt: renderTemplate(node.prompt, tctx),
      maxTokens: node.maxTokens,
      ...(simulate === undefined ? {} : { simulate }),
      // Same seed for the speculative and the authoritative attempt of a node: both draw the
      // same simulated world outcome.
      seed: `${ctx.runId}:${node.id}`,
    };
  }
  const args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node.args)) args[k] = typeof v === 'string' ? renderTemplate(v, tctx) : v;
  return { kind: 'tool', tool: node.tool, args, effects: node.effects, priceUsd: node.priceUsd };
}

export interface LaunchPlan {
  readonly attemptId: string;
  readonly attempt: AttemptRecord;
  readonly job: OpJob;
  readonly intent: Intent;
}

export function planLaunch(p: {
  tenant: string;
  runId: string;
  workflow: string;
  node: WorkflowNode;
  epoch: number;
  kind: AttemptKind;
  op: OpSpec;
  assumed: Record<string, string>;
  decisionId?: string;
  streamPartials: boolean;
  priority?: number;
  /** W3C carrier, so the worker's spans join the run's trace. */
  trace?: Record<string, string>;
  /** M10: the budget reservation this launch stands on (recovery.ts sweepReservations). */
  reservationId?: string;
  /** Issue 10 item 4: the run's default operation deadline (the node's `timeoutMs` wins). */
  defaultTimeoutMs?: number;
  nowMs: number;
}): LaunchPlan {
  const attemptId = attemptIdFor(p.node.id, p.epoch, p.kind);
  const timeoutMs = p.node.timeoutMs ?? p.defaultTimeoutMs;
  const attempt: AttemptRecord = {
    attemptId,
    nodeId: p.node.id,
    kind: p.kind,
    epoch: p.epoch,
    status: 'queued',
    assumed: p.assumed,
    ...(p.decisionId === undefined ? {} : { decisionId: p.decisionId }),
    costNanoUsd: 0,
    ...(p.reservationId === undefined ? {} : { reservationId: p.reservationId }),
    createdAtMs: p.nowMs,
    tries: 0,
  };
  const job: OpJob = {
    v: 1,
    tenant: p.tenant,
    runId: p.runId,
    workflow: p.workflow,
    nodeId: p.node.id,
    attemptId,
    epoch: p.epoch,
    kind: p.kind,
    op: p.op,
    assumed: p.assumed,
    streamPartials: p.streamPartials,
    ...(p.trace === undefined ? {} : { trace: p.trace }),
    // M4: what the worker learns the operation's duration and output tokens under.
    opClass: operationClassOf(p.node),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
  const jobId = jobIdFor(p.tenant, p.runId, attemptId);
  const intent: Intent = {
    queue: p.kind === 'authoritative' ? QUEUES.ops : QUEUES.spec,
    jobId,
    name: p.node.id,
    // Issue 13 item 3: without what the worker fills back in from the job id and lane (compactOpJob).
    data: compactOpJob(job, jobId),
    ...(p.priority === undefined ? {} : { priority: p.priority }),
    createdAtMs: p.nowMs,
  };
  return { attemptId, attempt, job, intent };
}

/**
 * M10: the job of a paid predictor's guess: an attempt of the downstream node (id
 * `<node>.g-<upstream>`, epoch 0, fenced and billed like any attempt) on the speculative queue,
 * whose output is the guess.
 */
export function planGuess(p: {
  tenant: string;
  runId: string;
  workflow: string;
  nodeId: string;
  upstream: string;
  op: OpSpec;
  decisionId: string;
  priority: number;
  /** M10: the guess's price reserved in the tenant's budget. */
  reservedNanoUsd: number;
  /** M10: the id of that reservation (recovery.ts sweepReservations). */
  reservationId?: string;
  /** Issue 10 item 4: the guess's deadline (the run's default operation deadline). */
  timeoutMs?: number;
  nowMs: number;
}): LaunchPlan {
  const attemptId = guessAttemptId(p.nodeId, p.upstream);
  const attempt: AttemptRecord = {
    attemptId,
    nodeId: p.nodeId,
    kind: 'speculative',
    epoch: 0,
    status: 'queued',
    assumed: {},
    decisionId: p.decisionId,
    costNanoUsd: 0,
    reservedNanoUsd: p.reservedNanoUsd,
    ...(p.reservationId === undefined ? {} : { reservationId: p.reservationId }),
    createdAtMs: p.nowMs,
    tries: 0,
  };
  const job: OpJob = {
    v: 1,
    tenant: p.tenant,
    runId: p.runId,
    workflow: p.workflow,
    nodeId: p.nodeId,
    attemptId,
    epoch: 0,
    kind: 'speculative',
    op: p.op,
    assumed: {},
    streamPartials: false,
    ...(p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs }),
  };
  const jobId = jobIdFor(p.tenant, p.runId, attemptId);
  const intent: Intent = {
    queue: QUEUES.spec,
    jobId,
    name: `${p.nodeId}.guess`,
    // Issue 13 item 3: without what the worker fills back in from the job id and lane (compactOpJob).
    data: compactOpJob(job, jobId),
    priority: p.priority,
    createdAtMs: p.nowMs,
  };
  return { attemptId, attempt, job, intent };
}

/** BullMQ's largest priority. */
export const MAX_PRIORITY = 2_097_151;

/** M10: BullMQ priority from EV: higher EV -> lower number (served first), within 1..MAX_PRIORITY. */
export function priorityFromEv(evUsd: number): number {
  const MAX = MAX_PRIORITY;
  if (!(evUsd > 0)) return MAX;
  // Log scale: $1 of EV or more -> 1; each halving of EV adds ~2^14 steps.
  const p = Math.round(1 + Math.max(0, -Math.log2(evUsd)) * 16_384);
  return Math.min(MAX, Math.max(1, p));
}
