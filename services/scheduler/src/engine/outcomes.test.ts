import { type AttemptRecord, parseWorkflow } from '@gambit/shared';
import { initialNodeState, type NodeState } from '@gambit/shared/redis';
import { describe, expect, it } from 'vitest';
import { parseClasses, secondsSaved } from './outcomes.js';
import { graphOf, type RunSnapshot } from './run-view.js';

const wf = parseWorkflow({
  name: 'w',
  nodes: [
    { id: 'u', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'p', expectedOutputTokens: 1, maxTokens: 2 },
    { id: 'd', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: '{{nodes.u.output}}', expectedOutputTokens: 1, maxTokens: 2 },
  ],
  edges: [{ from: 'u', to: 'd', type: 'passthrough' }],
});

function snapshot(upFinishedMs: number, spec: { startedAtMs: number; finishedAtMs: number }, nodeDoneMs: number): RunSnapshot {
  const nodes = new Map<string, NodeState>([
    ['u', { ...initialNodeState(), state: 'succeeded', output: 'x', finishedAtMs: upFinishedMs }],
    ['d', { ...initialNodeState(), state: 'succeeded', output: 'y', source: 'speculative', auth: 'd.s1', finishedAtMs: nodeDoneMs }],
  ]);
  const a: AttemptRecord = { attemptId: 'd.s1', nodeId: 'd', kind: 'speculative', epoch: 1, status: 'succeeded', assumed: { u: 'x' }, costNanoUsd: 5, createdAtMs: 0, tries: 1, ...spec };
  return {
    header: { tenant: 't', runId: 'r', workflowName: 'w', status: 'succeeded', inputs: {}, alpha: undefined, lambdaUsdPerSec: undefined, speculation: true, createdAtMs: 0, finishedAtMs: undefined, reason: undefined, trace: undefined },
    workflow: wf,
    nodes,
    attempts: new Map([['d.s1', a]]),
    graph: graphOf(wf),
  };
}

describe('outcomes (M4)', () => {
  it('parses edge-class lists', () => {
    expect(parseClasses('u=t/w/u->d,v=t/w/v->d')).toEqual([
      { up: 'u', classId: 't/w/u->d' },
      { up: 'v', classId: 't/w/v->d' },
    ]);
    expect(parseClasses('')).toEqual([]);
  });

  it('a hit saves the time the downstream would have run after its upstream', () => {
    // Upstream done at 1000; the speculation ran 100..900 (800 ms) and was confirmed at 1000.
    expect(secondsSaved(snapshot(1000, { startedAtMs: 100, finishedAtMs: 900 }, 1000), 'd', 'd.s1')).toBeCloseTo(0.8, 9);
    // A speculation that finished after the upstream saves only the part it ran before it.
    expect(secondsSaved(snapshot(1000, { startedAtMs: 600, finishedAtMs: 1400 }, 1400), 'd', 'd.s1')).toBeCloseTo(0.4, 9);
    // Never negative.
    expect(secondsSaved(snapshot(1000, { startedAtMs: 1000, finishedAtMs: 1100 }, 1300), 'd', 'd.s1')).toBe(0);
  });
});
