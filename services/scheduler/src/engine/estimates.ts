/**
 * Current duration estimates of a run's nodes (M4 ΔT): an LLM node's from its latency profile
 * (the node's simulated latency overrides it) and its expected output tokens; a tool's from its
 * declared duration. A running node's estimate is what remains of it, conditional on how long it
 * has run (E[T − t | T > t], never 0: M4).
 */
import { DEFAULT_DURATION_CV, latencyProfile, type LatencyProfile, lognormalDuration, type WorkflowNode } from '@gambit/shared';
import type { RunSnapshot } from './run-view.js';

export function profileOf(node: WorkflowNode): LatencyProfile {
  if (node.kind !== 'llm') return { ttftMs: 0, tokensPerSec: 1 };
  const base = latencyProfile(node.model);
  return { ttftMs: node.simulate?.ttftMs ?? base.ttftMs, tokensPerSec: node.simulate?.tokensPerSec ?? base.tokensPerSec };
}

export function expectedDurationMs(node: WorkflowNode, outputTokens?: number): number {
  if (node.kind !== 'llm') return node.expectedDurationMs;
  const p = profileOf(node);
  return p.ttftMs + (1000 * (outputTokens ?? node.expectedOutputTokens)) / p.tokensPerSec;
}

/** Expected time until a node finishes: 0 when done, the remainder when running, all when pending. */
export function remainingMs(s: RunSnapshot, nodeId: string, nowMs: number): number {
  const n = s.nodes.get(nodeId);
  const def = s.graph.byId.get(nodeId);
  if (n === undefined || def === undefined) return 0;
  if (n.state === 'succeeded' || n.state === 'failed' || n.state === 'cancelled') return 0;
  const full = expectedDurationMs(def);
  if (n.state === 'pending') return full;
  const a = n.auth === undefined ? undefined : s.attempts.get(n.auth);
  const started = a?.startedAtMs ?? n.startedAtMs ?? nowMs;
  return lognormalDuration(full, DEFAULT_DURATION_CV).expectedRemainingMs(Math.max(0, nowMs - started));
}
