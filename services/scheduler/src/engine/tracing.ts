/**
 * OpenTelemetry spans and run-level metrics of the scheduler, one trace per run across
 * processes (issue 12 item 4). At submission the run span's ids are chosen (run-span.ts: its
 * parent is the HTTP server span, itself the caller's child when a `traceparent` came in) and
 * stored in the run header; every decision, launch and outcome span is its child, and each job
 * carries its launch or decision span's carrier so the worker's spans join the trace. When the
 * run ends, the scheduler that ends it emits the run span (submission to end) with the
 * workflow's edges, which the OTLP importer reads back (`gambit import otlp`).
 */
import type { DecisionRecord, Outcome } from '@gambit/shared';
import type { KeySpace, RedisLike } from '@gambit/shared/redis';
import { ATTR, beginRunSpan, endRunSpan, extractContext, injectContext, type Metrics, SPAN } from '@gambit/shared/telemetry';
import { type Tracer, trace } from '@opentelemetry/api';
import { loadRun, type RunHeader, type RunSnapshot } from './run-view.js';

/** The attributes every span of a run carries. */
function runAttrs(h: RunHeader, workflow = h.workflowName) {
  return { [ATTR.tenant]: h.tenant, [ATTR.runId]: h.runId, [ATTR.workflow]: workflow };
}

/** A decision span (money in dollars, as in the record); returns the carrier of its context. */
export function traceDecision(tracer: Tracer | undefined, h: RunHeader, r: DecisionRecord): Record<string, string> | undefined {
  if (tracer === undefined) return undefined;
  const parent = extractContext(h.trace);
  const span = tracer.startSpan(
    SPAN.decision,
    {
      attributes: {
        ...runAttrs(h, r.workflow),
        [ATTR.nodeId]: r.node,
        [ATTR.decisionId]: r.decisionId,
        [ATTR.decisionPhase]: r.phase,
        [ATTR.decisionAction]: r.action,
        [ATTR.decisionReason]: r.reason,
        [ATTR.decisionP]: r.p,
        [ATTR.decisionEvUsd]: r.evUsd,
        [ATTR.decisionThresholdUsd]: r.thresholdUsd,
        [ATTR.decisionCSpecUsd]: r.cSpecUsd,
        [ATTR.decisionCFailUsd]: r.cFailUsd,
        [ATTR.decisionDeltaTSec]: r.deltaTSec,
        [ATTR.decisionAlpha]: r.alpha,
        [ATTR.decisionLambda]: r.lambdaUsdPerSec,
        [ATTR.decisionStage]: r.stage,
      },
    },
    parent,
  );
  const carrier = injectContext(trace.setSpan(parent, span));
  span.end();
  return carrier;
}

/** A launch span of an authoritative attempt; returns the carrier the job takes to the worker. */
export function traceLaunch(tracer: Tracer | undefined, h: RunHeader, nodeId: string, attemptId: string): Record<string, string> | undefined {
  if (tracer === undefined) return undefined;
  const parent = extractContext(h.trace);
  const span = tracer.startSpan(
    SPAN.node,
    { attributes: { ...runAttrs(h), [ATTR.nodeId]: nodeId, [ATTR.attemptId]: attemptId, [ATTR.attemptKind]: 'authoritative' } },
    parent,
  );
  const carrier = injectContext(trace.setSpan(parent, span));
  span.end();
  return carrier;
}

/** An outcome span (M4): the edge, hit/miss/cancelled/shadow, waste and seconds saved. */
export function traceOutcome(tracer: Tracer | undefined, h: RunHeader, o: Outcome): void {
  if (tracer === undefined) return;
  const [from, to] = edgeOfClass(o.edgeClass);
  tracer
    .startSpan(
      SPAN.outcome,
      {
        attributes: {
          ...runAttrs(h, o.workflow),
          [ATTR.outcomeId]: o.outcomeId,
          [ATTR.decisionId]: o.decisionId,
          [ATTR.edgeClass]: o.edgeClass,
          ...(from !== undefined && to !== undefined ? { [ATTR.edgeFrom]: from, [ATTR.edgeTo]: to } : {}),
          [ATTR.outcomeKind]: o.kind,
          ...(o.evidence === false ? { [ATTR.outcomeEvidence]: false } : {}),
          [ATTR.wasteUsd]: o.wasteUsd,
          [ATTR.secondsSaved]: o.secondsSaved,
        },
      },
      extractContext(h.trace),
    )
    .end();
}

/** `tenant/workflow/from->to` (edgeClassId) -> [from, to]. */
function edgeOfClass(classId: string): [string | undefined, string | undefined] {
  const last = classId.slice(classId.lastIndexOf('/') + 1);
  const i = last.indexOf('->');
  return i < 0 ? [undefined, undefined] : [last.slice(0, i), last.slice(i + 2)];
}

/**
 * The run's span ids, chosen at submission under the active (HTTP server) span; `end` does
 * nothing: the span is emitted when the run ends (`runEnded`).
 */
export function traceRun(tracer: Tracer | undefined, _tenant: string, _runId: string, _workflow: string): { carrier: Record<string, string> | undefined; end: () => void } {
  if (tracer === undefined) return { carrier: undefined, end: () => {} };
  return { carrier: beginRunSpan(), end: () => {} };
}

/** A run that ended, as `onRunEnd` hears of it (the webhook's trigger). */
export interface RunEndEvent {
  readonly tenant: string;
  readonly runId: string;
  readonly status: string;
  readonly endMs: number;
  /** Issue 10 item 3: the run's settled cost, the sum of its attempts' billed cost (nano-USD). */
  readonly costNanoUsd: number;
}

export interface RunEndDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly tracer?: Tracer;
  readonly metrics?: Metrics;
  /** Told of every run this process ended (once per run: after the script that ended it). */
  readonly onRunEnd?: (e: RunEndEvent) => void;
}

/** A run ended (by this process): the run span (submission to end) and the run metrics. */
export function runEnded(deps: RunEndDeps, s: RunSnapshot, status: string, endMs: number, reason?: string): void {
  const h = s.header;
  if (deps.onRunEnd !== undefined) {
    let costNanoUsd = 0;
    for (const a of s.attempts.values()) costNanoUsd += a.costNanoUsd;
    deps.onRunEnd({ tenant: h.tenant, runId: h.runId, status, endMs, costNanoUsd });
  }
  deps.metrics?.runEnded({ tenant: h.tenant, status, durationSec: Math.max(0, endMs - h.createdAtMs) / 1000 });
  if (deps.tracer === undefined || h.trace === undefined) return;
  endRunSpan(deps.tracer, h.trace, SPAN.run, {
    startMs: h.createdAtMs,
    endMs,
    attributes: {
      ...runAttrs(h),
      [ATTR.runStatus]: status,
      ...(reason !== undefined ? { [ATTR.runReason]: reason } : {}),
      [ATTR.workflowEdges]: JSON.stringify(s.workflow.edges.map((e) => ({ from: e.from, to: e.to, type: e.type, ...(e.k !== undefined ? { k: e.k } : {}) }))),
    },
    ...(status === 'failed' ? { error: reason ?? 'run failed' } : {}),
  });
}

/** `runEnded` for a run ended without a snapshot in hand (cancel, failure): reads it first. */
export async function runEndedById(deps: RunEndDeps, tenant: string, runId: string, status: string, endMs: number, reason: string): Promise<void> {
  const s = await loadRun(deps.redis, deps.ks, tenant, runId);
  if (s !== undefined) runEnded(deps, s, status, endMs, reason);
}
