/**
 * The BullMQ processor of one operation job (ARCHITECTURE.md worker; M6, M8):
 * validate the payload → start the try (fenced) → execute under a cancellable lease → record the
 * result (fenced, billed once per try) → emit `attempt_finished`. Error handling follows the
 * retry groups of shared/errors.ts: retryable → BullMQ retries with backoff; retry-after → a
 * delayed retry at the provider's time; non-retryable → the attempt is failed and the job fails
 * with UnrecoverableError. Every terminal path emits `attempt_finished`, also after FENCED, so
 * the scheduler can settle what the attempt cost.
 */
import {
  type AdvanceEvent,
  type Clock,
  DeadlineExceededError,
  type FieldIssue,
  isGambitError,
  type OpJob,
  expandOpJob,
  OpJobSchema,
  RetryAfterError,
  zodIssues,
} from '@gambit/shared';
import { attentionMember, controlKeys, failAttempt, finishAttempt, markAttention, QUEUES, recordOperationSample, startAttempt } from '@gambit/shared/redis';
import type { Metrics } from '@gambit/shared/telemetry';
import type { Tracer } from '@opentelemetry/api';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { CancelWatcher } from './cancellation.js';
import { type ExecResult, type LlmDeps, runLlm } from './run-llm.js';
import { isIrreversible, runTool, type ToolDeps } from './run-tool.js';
import { type OpObservation, observeOp } from './tracing.js';

export interface ProcessorDeps extends LlmDeps, ToolDeps {
  readonly workerId: string;
  readonly cancels: CancelWatcher;
  /** Tries (executions) of one attempt before it is failed. */
  readonly maxTries: number;
  /**
   * Issue 10 item 4: the operator's cap on an operation's deadline (WORKER_MAX_OP_TIMEOUT_MS):
   * a try runs at most min(job.timeoutMs, this) ms, and this long when the job names none.
   */
  readonly maxOpTimeoutMs: number;
  readonly clock: Clock;
  /** One span per try, joined to the run's trace through the job's W3C carrier. */
  readonly tracer?: Tracer;
  readonly metrics?: Metrics;
}

export interface OpJobResult {
  /** OK: output accepted. FENCED/STALE/DONE: output rejected (or not executed); cost recorded. */
  /** NEEDS_ATTENTION: an irreversible tool not run again (issue 11 D2); an operator resolves it. */
  readonly code: 'OK' | 'FENCED' | 'STALE' | 'DONE' | 'NEEDS_ATTENTION';
  readonly tries: number;
}

export type OpProcessor = (job: Job, token: string | undefined, signal: AbortSignal | undefined) => Promise<OpJobResult>;

function errorText(err: unknown): string {
  if (isGambitError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function formatIssues(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

export function createProcessor(deps: ProcessorDeps): OpProcessor {
  const log = deps.logger;

  const finished = (data: OpJob): Promise<void> => {
    const ev: AdvanceEvent = {
      type: 'attempt_finished',
      tenant: data.tenant,
      runId: data.runId,
      nodeId: data.nodeId,
      attemptId: data.attemptId,
      epoch: data.epoch,
    };
    return deps.events.publish(ev);
  };

  /**
   * Non-retryable end: record `failed` (fenced), tell the scheduler, fail the job for good.
   * `spent`: what the try spent before it was stopped (a deadline), billed once with the failure.
   */
  const failForGood = async (data: OpJob, tryNo: number, err: unknown, spent?: ExecResult): Promise<never> => {
    const text = errorText(err);
    const res = await failAttempt(deps.redis, deps.ks, {
      tenant: data.tenant,
      runId: data.runId,
      attemptId: data.attemptId,
      epoch: data.epoch,
      tryNo,
      error: text,
      finishedAtMs: deps.clock.nowMs(),
      ...(spent === undefined ? {} : { usage: spent.usage, usageEstimated: spent.usageEstimated, costNanoUsd: spent.costNanoUsd }),
    });
    log.warn({ attemptId: data.attemptId, runId: data.runId, code: res.code, error: text }, 'attempt failed');
    if (res.code !== 'MISSING') await finished(data);
    throw new UnrecoverableError(text);
  };

  /** An invalid payload: fail loudly; if it names an attempt, mark that attempt failed too. */
  const rejectInvalid = async (raw: unknown, issues: readonly FieldIssue[]): Promise<never> => {
    const text = `VALIDATION: invalid OpJob payload: ${formatIssues(issues)}`;
    log.error({ issues, data: raw }, 'invalid op job');
    const d = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const { tenant, runId, attemptId, nodeId, epoch } = d;
    if (typeof tenant === 'string' && typeof runId === 'string' && typeof attemptId === 'string' && typeof epoch === 'number') {
      const res = await failAttempt(deps.redis, deps.ks, { tenant, runId, attemptId, epoch, tryNo: 0, error: text, finishedAtMs: deps.clock.nowMs() });
      if (res.code !== 'MISSING' && typeof nodeId === 'string')
        await deps.events.publish({ type: 'attempt_finished', tenant, runId, nodeId, attemptId, epoch });
    }
    throw new UnrecoverableError(text);
  };

  /** Issue 11 D2: the attempt stops in `needs_attention`; nothing is executed. */
  const needsAttention = async (data: OpJob, tryNo: number): Promise<OpJobResult> => {
    const op = data.op as Extract<OpJob['op'], { kind: 'tool' }>;
    const reason = `irreversible tool "${op.tool}" may have run in an earlier try (${tryNo - 1} before this one) and takes no idempotency key: an operator must say whether it took effect`;
    const res = await markAttention(deps.redis, deps.ks, { ...data, tryNo, reason, nowMs: deps.clock.nowMs() });
    log.warn({ attemptId: data.attemptId, runId: data.runId, nodeId: data.nodeId, tool: op.tool, tries: tryNo, code: res.code }, 'attempt needs attention');
    if (res.code === 'OK')
      await deps.redis.zadd(controlKeys(deps.ks).attention, deps.clock.nowMs(), attentionMember(data.tenant, data.runId, data.nodeId));
    if (res.code === 'MISSING') throw new UnrecoverableError(`NOT_FOUND: attempt ${data.attemptId} of run ${data.runId} does not exist`);
    await finished(data);
    return { code: res.code === 'OK' ? 'NEEDS_ATTENTION' : res.code, tries: tryNo };
  };

  const execute = async (job: Job, token: string | undefined, signal: AbortSignal | undefined, data: OpJob, obs: OpObservation): Promise<OpJobResult> => {
    const ref = { tenant: data.tenant, runId: data.runId, attemptId: data.attemptId, epoch: data.epoch };

    const start = await startAttempt(deps.redis, deps.ks, { ...ref, workerId: deps.workerId, nowMs: deps.clock.nowMs() });
    if (start.code === 'MISSING') throw new UnrecoverableError(`NOT_FOUND: attempt ${data.attemptId} of run ${data.runId} does not exist`);
    if (start.code === 'DONE' || start.code === 'FENCED') {
      // Finished by an earlier try (its event may have been lost with that process), or fenced
      // before it ran: nothing to execute, only re-announce.
      await finished(data);
      return { code: start.code, tries: start.tries };
    }
    const tryNo = start.tries;
    // Issue 11 D2: an irreversible tool whose earlier try may have started (any try after the
    // first: the worker died, the lock was lost, or a retryable error came after the call went
    // out) runs again only under the same idempotency key, and only if the tool honours it.
    if (tryNo > 1 && data.op.kind === 'tool' && isIrreversible(deps, data.op) && deps.tools.get(data.op.tool).honoursIdempotencyKey !== true)
      return needsAttention(data, tryNo);
    if (tryNo > deps.maxTries) return failForGood(data, tryNo, new Error(`gave up after ${tryNo - 1} tries`));

    const lease = deps.cancels.track({ ...ref, kind: data.kind }, signal);
    const ranFromMs = deps.clock.nowMs();
    // Issue 10 item 4: every try has a deadline; when it passes the lease aborts (cause
    // `deadline`), the operation stops (a tool that ignores its signal is abandoned: runTool),
    // and the attempt fails with DEADLINE_EXCEEDED below, which frees the slot.
    const deadlineMs = Math.min(data.timeoutMs ?? deps.maxOpTimeoutMs, deps.maxOpTimeoutMs);
    const deadline = setTimeout(() => lease.expire(), deadlineMs);
    let result: ExecResult;
    try {
      result =
        data.op.kind === 'llm'
          ? await runLlm(deps, data, data.op, tryNo, lease.signal)
          : await runTool(deps, data, data.op, tryNo, lease.signal);
    } catch (err) {
      clearTimeout(deadline);
      lease.release();
      if (isGambitError(err) && err.retry === 'non-retryable') return failForGood(data, tryNo, err);
      if (err instanceof RetryAfterError && token !== undefined && tryNo < deps.maxTries) {
        log.info({ attemptId: data.attemptId, retryAfterMs: err.retryAfterMs, code: err.code }, 'retry after');
        await job.moveToDelayed(deps.clock.nowMs() + err.retryAfterMs, token);
        throw new DelayedError();
      }
      // Retryable (or unknown): BullMQ retries with the job's backoff; the last retry fails for good.
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (lastAttempt || tryNo >= deps.maxTries) return failForGood(data, tryNo, err);
      log.warn({ attemptId: data.attemptId, error: errorText(err), attemptsMade: job.attemptsMade }, 'retryable error');
      throw err;
    }
    clearTimeout(deadline);
    const ranMs = Math.max(0, deps.clock.nowMs() - ranFromMs);
    const cause = lease.cause();
    lease.release();
    if (result.kind === 'aborted' && cause === 'deadline') {
      obs.billed(result, 'DEADLINE_EXCEEDED');
      return failForGood(
        data,
        tryNo,
        new DeadlineExceededError(`operation ${data.nodeId} (${data.op.kind === 'llm' ? `${data.op.provider}/${data.op.model}` : data.op.tool}) exceeded its deadline of ${deadlineMs} ms and was stopped`),
        result,
      );
    }

    const fin = await finishAttempt(deps.redis, deps.ks, {
      ...ref,
      tryNo,
      outcome: result.kind === 'done' ? 'ok' : 'aborted',
      output: result.kind === 'done' ? result.output : '',
      usage: result.usage,
      usageEstimated: result.usageEstimated,
      costNanoUsd: result.costNanoUsd,
      finishedAtMs: deps.clock.nowMs(),
    });
    log.info(
      {
        attemptId: data.attemptId,
        runId: data.runId,
        nodeId: data.nodeId,
        kind: data.kind,
        code: fin.code,
        aborted: result.kind === 'aborted' ? cause : undefined,
        tries: tryNo,
        usage: result.usage,
        usageEstimated: result.usageEstimated,
        costNanoUsd: result.costNanoUsd,
      },
      'attempt recorded',
    );
    if (fin.code !== 'MISSING') obs.billed(result, fin.code);
    if (result.kind === 'aborted') log.debug({ attemptId: data.attemptId, partialText: result.partial }, 'attempt aborted');
    if (fin.code === 'MISSING') throw new UnrecoverableError(`NOT_FOUND: attempt ${data.attemptId} of run ${data.runId} vanished while running`);
    if (fin.code === 'ABORTED') {
      // Stopped by shutdown (or a lost lock) while still live: its cost is billed; hand the job
      // back so another worker runs it. A lost lock means BullMQ already gave the job away.
      if (cause === 'lost' || token === undefined) throw new Error('job lock lost while running');
      await job.moveToDelayed(deps.clock.nowMs(), token);
      throw new DelayedError();
    }
    await finished(data);
    if (fin.code === 'OK' && result.kind === 'done' && data.opClass !== undefined) {
      // M4: a completed operation teaches its class's duration and output tokens (shared across
      // the tenant's runs); after the advance event, so the run never waits for it.
      const outputTokens = data.op.kind === 'llm' ? result.usage.outputTokens : undefined;
      // The simulated provider runs GAMBIT_SIM_TIME_SCALE × the model's real latency: its samples
      // are recorded in the model's time (÷ timeScale), the time of the latency profiles the
      // scheduler uses before a class has samples. Recorded as measured, the class's learned
      // duration fell to timeScale × the profile's once it had 5 samples, and with it ΔT (issue 9,
      // bench/agreement: ΔT 0.42 s → 0.025 s at scale 0.05, and the rule stopped launching).
      const simScale = data.op.kind === 'llm' && deps.providers.resolve(data.op.provider).provider.name === 'simulated' && deps.timeScale > 0 ? deps.timeScale : 1;
      const ttftMs = 'ttftMs' in result && result.ttftMs !== undefined ? result.ttftMs / simScale : undefined;
      await recordOperationSample(deps.redis, deps.ks, data.tenant, data.opClass, { durationMs: ranMs / simScale, ttftMs, outputTokens });
    }
    return { code: fin.code, tries: tryNo };
  };

  return async function processOpJob(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<OpJobResult> {
    // Issue 13 item 3: the payload leaves out what the job id and the lane say (compactOpJob).
    const raw = expandOpJob(job.data, { jobId: job.id, kind: job.queueName === QUEUES.spec ? 'speculative' : 'authoritative' });
    const parsed = OpJobSchema.safeParse(raw);
    if (!parsed.success) return rejectInvalid(raw, zodIssues(parsed.error, 'job.data'));
    const data = parsed.data;
    // M10: speculative work runs only in speculative slots, authoritative work only in its own.
    const expectedQueue = data.kind === 'speculative' ? QUEUES.spec : QUEUES.ops;
    if (job.queueName !== expectedQueue)
      return rejectInvalid(job.data, [{ path: 'job.data.kind', message: `a ${data.kind} attempt must be enqueued on "${expectedQueue}", not "${job.queueName}"` }]);
    // Issue 10 item 8: spans and metrics name who does the work (`simulated` for a stand-in).
    const obs = observeOp(deps, data, data.op.kind === 'llm' ? deps.providers.servedBy(data.op.provider) : undefined);
    return obs.run(() => execute(job, token, signal, data, obs));
  };
}

