/**
 * A run's events as a stream (GET /v1/runs/:tenant/:runId/events, server-sent events; docs/api.md).
 * Any scheduler may advance a run, so the stream follows the run's Redis keys (the truth), not
 * this process's memory: every `pollMs` it reads the run and emits what changed since the last
 * read, in this order: node state changes, new or changed attempts, new decisions, new outcomes,
 * and finally `end` when the run is no longer running (then the stream closes). A new connection
 * starts with the run's current state (a `run` event, then every node, attempt, decision and
 * outcome so far).
 */
import { type AttemptRecord, nanoToUsd, OutcomeSchema } from '@gambit/shared';
import { decodeDecision, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import { loadRun, runLists } from './engine/run-view.js';

export interface RunEvent {
  readonly event: 'run' | 'node' | 'attempt' | 'decision' | 'outcome' | 'end';
  readonly data: Record<string, unknown>;
}

function attemptView(a: AttemptRecord): Record<string, unknown> {
  return { ...a, costUsd: nanoToUsd(a.costNanoUsd) };
}

/** Yields the run's events until it ends or `signal` aborts. Undefined first read → nothing. */
export async function* runEvents(
  redis: RedisLike,
  ks: KeySpace,
  tenant: string,
  runId: string,
  opts: { pollMs: number; signal: AbortSignal },
): AsyncGenerator<RunEvent> {
  const nodes = new Map<string, string>();
  const attempts = new Map<string, string>();
  let nDecisions = 0;
  let nOutcomes = 0;
  let first = true;
  while (!opts.signal.aborted) {
    const s = await loadRun(redis, ks, tenant, runId);
    if (s === undefined) return;
    if (first) {
      yield { event: 'run', data: { tenant, runId, workflow: s.workflow.name, status: s.header.status, createdAtMs: s.header.createdAtMs, nodes: s.workflow.nodes.map((n) => n.id), edges: s.workflow.edges.map((e) => ({ from: e.from, to: e.to, type: e.type })) } };
      first = false;
    }
    for (const [nodeId, n] of s.nodes) {
      const view = { nodeId, state: n.state, source: n.source ?? null, output: n.output ?? null, error: n.error ?? null, speculation: n.spec === undefined ? null : { attemptId: n.spec.a, assumed: n.spec.assumed } };
      const key = JSON.stringify(view);
      if (nodes.get(nodeId) === key) continue;
      nodes.set(nodeId, key);
      yield { event: 'node', data: view };
    }
    for (const a of [...s.attempts.values()].sort((x, y) => x.createdAtMs - y.createdAtMs || (x.attemptId < y.attemptId ? -1 : 1))) {
      const key = `${a.status}|${a.costNanoUsd}|${a.finishedAtMs ?? ''}`;
      if (attempts.get(a.attemptId) === key) continue;
      attempts.set(a.attemptId, key);
      yield { event: 'attempt', data: attemptView(a) };
    }
    const { decisions, outcomes } = await runLists(redis, ks, s, { decisions: nDecisions, outcomes: nOutcomes });
    nDecisions += decisions.length;
    nOutcomes += outcomes.length;
    for (const d of decisions) yield { event: 'decision', data: decodeDecision(d, { tenant, workflow: s.workflow.name, runId, createdAtMs: s.header.createdAtMs }) };
    for (const o of outcomes) yield { event: 'outcome', data: OutcomeSchema.parse(JSON.parse(o)) };
    if (s.header.status !== 'running') {
      yield { event: 'end', data: { tenant, runId, status: s.header.status, reason: s.header.reason ?? null, finishedAtMs: s.header.finishedAtMs ?? null } };
      return;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts.pollMs);
      opts.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }
}
