/**
 * OpenTelemetry spans of the scheduler, joined into one trace per run across processes: the run's
 * W3C carrier is stored in its header at submission; every decision and launch span is a child
 * of it, and each job carries its launch span's carrier so the worker's spans join the trace.
 */
import type { DecisionRecord } from '@gambit/shared';
import { ATTR, extractContext, injectContext, SPAN } from '@gambit/shared/telemetry';
import { type Tracer, trace } from '@opentelemetry/api';
import type { RunHeader } from './run-view.js';

/** A decision span (money in dollars, as in the record); returns the carrier of its context. */
export function traceDecision(tracer: Tracer | undefined, h: RunHeader, r: DecisionRecord): Record<string, string> | undefined {
  if (tracer === undefined) return undefined;
  const parent = extractContext(h.trace);
  const span = tracer.startSpan(
    SPAN.decision,
    {
      attributes: {
        [ATTR.tenant]: h.tenant,
        [ATTR.runId]: h.runId,
        [ATTR.workflow]: r.workflow,
        [ATTR.nodeId]: r.node,
        [ATTR.decisionId]: r.decisionId,
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
    { attributes: { [ATTR.tenant]: h.tenant, [ATTR.runId]: h.runId, [ATTR.workflow]: h.workflowName, [ATTR.nodeId]: nodeId, [ATTR.attemptId]: attemptId, [ATTR.attemptKind]: 'authoritative' } },
    parent,
  );
  const carrier = injectContext(trace.setSpan(parent, span));
  span.end();
  return carrier;
}

/** The run's root span at submission; returns its carrier, stored in the run header. */
export function traceRun(tracer: Tracer | undefined, tenant: string, runId: string, workflow: string): { carrier: Record<string, string> | undefined; end: () => void } {
  if (tracer === undefined) return { carrier: undefined, end: () => {} };
  const span = tracer.startSpan(SPAN.run, { attributes: { [ATTR.tenant]: tenant, [ATTR.runId]: runId, [ATTR.workflow]: workflow } });
  return { carrier: injectContext(trace.setSpan(extractContext(undefined), span)), end: () => span.end() };
}
