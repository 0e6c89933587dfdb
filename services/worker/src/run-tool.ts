/**
 * Executes a `tool` operation from the registry (M6). Effects are enforced here as well as in the
 * scheduler: an irreversible tool never runs in a speculative attempt, and a tool that returns
 * effects must be `staged`; its effects go only to the attempt's staging list, through the fenced
 * stageEffect script. The worker never releases staged effects: the scheduler does.
 * A tool call costs its configured per-call price (M2), also when it was aborted mid-way.
 */
import { ConflictError, type Logger, type OpJob, type PriceTable, type TokenUsage, usdToNano, ValidationError } from '@gambit/shared';
import { type KeySpace, type RedisLike, stageEffects, tenantKeys } from '@gambit/shared/redis';
import type { ExecResult } from './run-llm.js';
import type { ToolRegistry } from './tools/index.js';

export interface ToolDeps {
  readonly tools: ToolRegistry;
  readonly prices: PriceTable;
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly timeScale: number;
  readonly nowMs: () => number;
  readonly logger: Logger;
}

type ToolOp = Extract<OpJob['op'], { kind: 'tool' }>;

/**
 * Issue 11 D2: the idempotency key of a tool call, stable across tries of the same execution of
 * a node (run, node, epoch) and new for a re-execution (a new epoch). The tenant is part of it so
 * that outside services shared by tenants never see two tenants' calls collide.
 */
export function idempotencyKeyFor(job: Pick<OpJob, 'tenant' | 'runId' | 'nodeId' | 'epoch'>): string {
  return `gambit:${job.tenant}:${job.runId}:${job.nodeId}:${job.epoch}`;
}

/** True when the operation is irreversible (declared by the tool or by the workflow's node). */
export function isIrreversible(deps: Pick<ToolDeps, 'tools'>, op: ToolOp): boolean {
  return deps.tools.get(op.tool).effects === 'irreversible' || op.effects === 'irreversible';
}

/**
 * Issue 10 item 4: settles with `work`, or rejects as soon as `signal` aborts, whichever comes
 * first, so a tool that ignores its signal cannot hold a worker slot past its deadline or a
 * cancellation (what it still does is abandoned: its result is never used).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

const NO_TOKENS: TokenUsage = { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };

export async function runTool(deps: ToolDeps, job: OpJob, op: ToolOp, tryNo: number, signal: AbortSignal): Promise<ExecResult> {
  const tool = deps.tools.get(op.tool);
  if (job.kind === 'speculative' && (tool.effects === 'irreversible' || op.effects === 'irreversible'))
    throw new ConflictError(`tool "${op.tool}" is irreversible and may not run in a speculative attempt (M6)`);
  // Issue 10 item 7, defence in depth: a tool that discloses (by its own declaration) runs
  // speculatively only for a tenant that allows disclosure, whatever the scheduler decided.
  if (job.kind === 'speculative' && tool.discloses === true && (await deps.redis.hget(tenantKeys(deps.ks, job.tenant).config, 'allowDisclosure')) !== '1')
    throw new ConflictError(`tool "${op.tool}" discloses its arguments and tenant "${job.tenant}" does not allow disclosure: not run speculatively (M6)`);
  const staged = tool.effects === 'staged' || op.effects === 'staged';
  const costNanoUsd = usdToNano(op.priceUsd > 0 ? op.priceUsd : deps.prices.toolCallUsd(op.tool));
  const ctx = {
    signal,
    tenant: job.tenant,
    runId: job.runId,
    nodeId: job.nodeId,
    attemptId: job.attemptId,
    kind: job.kind,
    idempotencyKey: idempotencyKeyFor(job),
    tryNo,
    redis: deps.redis,
    ks: deps.ks,
    logger: deps.logger.child({ tool: op.tool }),
    timeScale: deps.timeScale,
    nowMs: deps.nowMs,
  };
  try {
    const result = await untilAborted(tool.run(op.args, ctx), signal);
    if (signal.aborted) return { kind: 'aborted', partial: '', usage: NO_TOKENS, usageEstimated: false, costNanoUsd };
    const effects = result.effects ?? [];
    if (effects.length > 0) {
      if (!staged) throw new ValidationError([{ path: `tools.${op.tool}.effects`, message: `returned effects but is declared "${tool.effects}", not "staged"` }]);
      const staging = await stageEffects(deps.redis, deps.ks, {
        tenant: job.tenant,
        runId: job.runId,
        attemptId: job.attemptId,
        epoch: job.epoch,
        tryNo,
        effects,
      });
      // Not staged (cancelled, superseded, a newer try): finishAttempt will reject this try too.
      if (staging.code !== 'OK') deps.logger.info({ attemptId: job.attemptId, code: staging.code }, 'staged effects fenced');
    }
    return { kind: 'done', output: result.output, usage: NO_TOKENS, usageEstimated: false, costNanoUsd };
  } catch (err) {
    // Whatever a tool throws once its signal aborted (AbortedError, fetch's AbortError) is the abort.
    if (signal.aborted) return { kind: 'aborted', partial: '', usage: NO_TOKENS, usageEstimated: false, costNanoUsd };
    throw err;
  }
}
