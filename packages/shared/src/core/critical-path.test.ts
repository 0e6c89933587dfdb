import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { criticalPath } from './critical-path.js';

// A(3) → B(2) → D(4) → E(1);  A → C(5) → D;  F(1) → E.
const DAG = {
  nodes: [
    { id: 'A', durationMs: 3 },
    { id: 'B', durationMs: 2 },
    { id: 'C', durationMs: 5 },
    { id: 'D', durationMs: 4 },
    { id: 'E', durationMs: 1 },
    { id: 'F', durationMs: 1 },
  ],
  edges: [
    { from: 'A', to: 'B' },
    { from: 'A', to: 'C' },
    { from: 'B', to: 'D' },
    { from: 'C', to: 'D' },
    { from: 'D', to: 'E' },
    { from: 'F', to: 'E' },
  ],
};

describe('M4 critical path and slack', () => {
  it('matches the hand-computed schedule of a DAG with a join and an independent source', () => {
    const cp = criticalPath(DAG);
    expect(cp.makespanMs).toBe(13);
    expect(cp.path).toEqual(['A', 'C', 'D', 'E']);
    const t = (id: string) => cp.byNode.get(id);
    expect(t('A')).toEqual({ earliestStartMs: 0, earliestFinishMs: 3, latestStartMs: 0, latestFinishMs: 3, slackMs: 0 });
    expect(t('B')).toEqual({ earliestStartMs: 3, earliestFinishMs: 5, latestStartMs: 6, latestFinishMs: 8, slackMs: 3 });
    expect(t('C')).toEqual({ earliestStartMs: 3, earliestFinishMs: 8, latestStartMs: 3, latestFinishMs: 8, slackMs: 0 });
    expect(t('D')).toEqual({ earliestStartMs: 8, earliestFinishMs: 12, latestStartMs: 8, latestFinishMs: 12, slackMs: 0 });
    expect(t('E')).toEqual({ earliestStartMs: 12, earliestFinishMs: 13, latestStartMs: 12, latestFinishMs: 13, slackMs: 0 });
    expect(t('F')).toEqual({ earliestStartMs: 0, earliestFinishMs: 1, latestStartMs: 11, latestFinishMs: 12, slackMs: 11 });
  });

  it('a chain is all critical; parallel branches get the difference as slack', () => {
    const chain = criticalPath({
      nodes: [
        { id: 'a', durationMs: 100 },
        { id: 'b', durationMs: 200 },
        { id: 'c', durationMs: 300 },
      ],
      edges: [
        { from: 'a', to: 'b' },
        { from: 'b', to: 'c' },
      ],
    });
    expect(chain.makespanMs).toBe(600);
    expect(chain.path).toEqual(['a', 'b', 'c']);
    for (const id of ['a', 'b', 'c']) expect(chain.byNode.get(id)?.slackMs).toBe(0);
    const fan = criticalPath({
      nodes: [
        { id: 's', durationMs: 10 },
        { id: 'fast', durationMs: 100 },
        { id: 'slow', durationMs: 700 },
        { id: 'join', durationMs: 50 },
      ],
      edges: [
        { from: 's', to: 'fast' },
        { from: 's', to: 'slow' },
        { from: 'fast', to: 'join' },
        { from: 'slow', to: 'join' },
      ],
    });
    expect(fan.makespanMs).toBe(760);
    expect(fan.path).toEqual(['s', 'slow', 'join']);
    expect(fan.byNode.get('fast')?.slackMs).toBe(600);
  });

  it('handles an empty graph, a single node, and a 100k-node chain without recursion', () => {
    expect(criticalPath({ nodes: [], edges: [] }).makespanMs).toBe(0);
    expect(criticalPath({ nodes: [{ id: 'x', durationMs: 5 }], edges: [] }).path).toEqual(['x']);
    const n = 100_000;
    const nodes = Array.from({ length: n }, (_, i) => ({ id: `n${i}`, durationMs: 1 }));
    const edges = Array.from({ length: n - 1 }, (_, i) => ({ from: `n${i}`, to: `n${i + 1}` }));
    const cp = criticalPath({ nodes, edges });
    expect(cp.makespanMs).toBe(n);
    expect(cp.path).toHaveLength(n);
  });

  it('rejects cycles, unknown nodes, duplicate ids and bad durations with ValidationError naming the field', () => {
    const path = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        return (err as ValidationError).issues[0]?.path;
      }
      return undefined;
    };
    const two = [
      { id: 'a', durationMs: 1 },
      { id: 'b', durationMs: 1 },
    ];
    expect(path(() => criticalPath({ nodes: two, edges: [{ from: 'a', to: 'b' }, { from: 'b', to: 'a' }] }))).toBe('edges');
    expect(path(() => criticalPath({ nodes: two, edges: [{ from: 'a', to: 'zz' }] }))).toBe('edges[0].to');
    expect(path(() => criticalPath({ nodes: [...two, { id: 'a', durationMs: 1 }], edges: [] }))).toBe('nodes[2].id');
    expect(path(() => criticalPath({ nodes: [{ id: 'a', durationMs: -1 }], edges: [] }))).toBe('nodes[0].durationMs');
  });
});
