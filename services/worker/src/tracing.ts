/**
 * What the worker reports about one try of an operation job (issue 12 items 1 and 4): a span by
 * the GenAI semantic conventions, joined to the run's trace through the job's W3C carrier (an
 * LLM call is `chat {model}` of kind CLIENT with `gen_ai.operation.name`, `gen_ai.provider.name`,
 * `gen_ai.request.model`, usage and `gen_ai.response.finish_reasons`; a tool is
 * `execute_tool {name}` with `gen_ai.tool.name`; `error.type` on failures), and the metrics of
 * the try (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`, dollars billed).
 * The try runs inside the span's context, so its log lines carry `trace_id` and `span_id`.
 */
import { isGambitError, nanoToUsd, type OpJob } from '@gambit/shared';
import { ATTR, type AttemptMetric, extractContext, type Metrics, SPAN } from '@gambit/shared/telemetry';
import { type Attributes, context, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { DelayedError } from 'bullmq';
import type { ExecResult } from './run-llm.js';

export interface OpObservation {
  /** Runs the try in the span's context; ends the span with the try's result or error. */
  run<T extends { readonly code: string }>(fn: () => Promise<T>): Promise<T>;
  /** The try was billed (finishAttempt recorded its usage and cost) with this code. */
  billed(result: ExecResult, code: string): void;
}

/** `error.type`: the Gambit error code (retry group) or the error class. */
export function errorType(err: unknown): string {
  if (isGambitError(err)) return err.code;
  if (err instanceof Error) return err.name;
  return typeof err;
}

/**
 * Issue 10 item 8: who serves an LLM call. Spans and metrics name the provider that does the
 * work: `simulated` when the simulated provider stands in for a hosted name (the operator's
 * GAMBIT_SIMULATED_FALLBACK), with the name asked for under `gambit.simulates` on the span.
 */
export interface Served {
  readonly provider: string;
  readonly simulates?: string;
}

function opOf(data: OpJob, served: Served | undefined): AttemptMetric['op'] {
  return data.op.kind === 'llm' ? { kind: 'llm', provider: served?.provider ?? data.op.provider, model: data.op.model } : { kind: 'tool', tool: data.op.tool };
}

function spanAttributes(data: OpJob, served: Served | undefined): Attributes {
  const common = {
    [ATTR.tenant]: data.tenant,
    [ATTR.runId]: data.runId,
    [ATTR.workflow]: data.workflow,
    [ATTR.nodeId]: data.nodeId,
    [ATTR.attemptId]: data.attemptId,
    [ATTR.attemptKind]: data.kind,
  };
  if (data.op.kind === 'llm')
    return {
      ...common,
      [ATTR.genAiOperation]: 'chat',
      [ATTR.genAiProvider]: served?.provider ?? data.op.provider,
      ...(served?.simulates !== undefined ? { [ATTR.simulates]: served.simulates } : {}),
      [ATTR.genAiRequestModel]: data.op.model,
      [ATTR.genAiRequestMaxTokens]: data.op.maxTokens,
    };
  return {
    ...common,
    [ATTR.genAiOperation]: 'execute_tool',
    [ATTR.genAiToolName]: data.op.tool,
    [ATTR.genAiToolType]: 'function',
    [ATTR.genAiToolCallId]: data.attemptId,
    [ATTR.effects]: data.op.effects,
  };
}

export function observeOp(deps: { readonly tracer?: Tracer; readonly metrics?: Metrics }, data: OpJob, served?: Served): OpObservation {
  const startedNs = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - startedNs) / 1e9;
  const parent = extractContext(data.trace);
  const span: Span | undefined = deps.tracer?.startSpan(
    data.op.kind === 'llm' ? SPAN.llmCall(data.op.model) : SPAN.toolCall(data.op.tool),
    { kind: data.op.kind === 'llm' ? SpanKind.CLIENT : SpanKind.INTERNAL, attributes: spanAttributes(data, served) },
    parent,
  );
  const ctx = span === undefined ? context.active() : trace.setSpan(parent, span);
  let billed = false;

  return {
    billed(result, code) {
      billed = true;
      deps.metrics?.attemptBilled({
        attemptKind: data.kind,
        op: opOf(data, served),
        result: result.kind === 'done' ? 'ok' : 'aborted',
        usage: result.usage,
        costNanoUsd: result.costNanoUsd,
        durationSec: seconds(),
      });
      if (span === undefined) return;
      span.setAttributes({
        ...(data.op.kind === 'llm'
          ? {
              [ATTR.genAiInputTokens]: result.usage.inputTokens,
              [ATTR.genAiCachedInputTokens]: result.usage.cachedInputTokens,
              [ATTR.genAiOutputTokens]: result.usage.outputTokens,
              ...(result.kind === 'done' && result.finishReason !== undefined ? { [ATTR.genAiResponseFinishReasons]: [result.finishReason] } : {}),
            }
          : {}),
        [ATTR.usageEstimated]: result.usageEstimated,
        [ATTR.costUsd]: nanoToUsd(result.costNanoUsd),
        [ATTR.costNanoUsd]: result.costNanoUsd,
        [ATTR.attemptOutcome]: result.kind === 'aborted' ? `aborted:${code}` : code,
      });
      if (result.kind === 'aborted') span.setAttribute(ATTR.errorType, 'aborted');
    },
    async run(fn) {
      try {
        const res = await context.with(ctx, fn);
        span?.setAttribute(ATTR.attemptOutcome, res.code);
        return res;
      } catch (err) {
        // A delayed retry (retry-after, hand-back) is not a failure of the try.
        if (!(err instanceof DelayedError)) {
          const type = errorType(err);
          if (!billed) deps.metrics?.attemptFailed({ attemptKind: data.kind, op: opOf(data, served), errorType: type, durationSec: seconds() });
          span?.setAttribute(ATTR.errorType, type);
          span?.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        }
        throw err;
      } finally {
        span?.end();
      }
    },
  };
}
