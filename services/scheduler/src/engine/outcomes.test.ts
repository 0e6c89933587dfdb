import { type AttemptRecord, parseWorkflow } from '@gambit/shared';
import { initialNodeState, type NodeState } from '@gambit/shared/redis';
import { describe, expect, it } from 'vitest';
import { dueOutcomes, guessesToScore, guessSettlement, parseClasses, secondsSaved } from './outcomes.js';
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

const guessed = parseWorkflow({
  name: 'g',
  nodes: [
    { id: 'u', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'p', expectedOutputTokens: 1, maxTokens: 2 },
    { id: 'd', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: '{{nodes.u.output}}', expectedOutputTokens: 1, maxTokens: 2 },
  ],
  edges: [{ from: 'u', to: 'd', type: 'router_k_way', k: 2, predictor: { kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'guess' } }],
});

/** A run whose `d` bought the guess `d.g-u` (reserved 40, billed 30) and maybe launched `d.s1` on it. */
function guessSnapshot(o: { upState: 'running' | 'succeeded'; guess: Partial<AttemptRecord>; spec?: 'live' | 'hit' | 'miss'; specAssumed?: string }): RunSnapshot {
  const d: NodeState = { ...initialNodeState() };
  const spec = { a: 'd.s1', d: 'r:d:runtime', assumed: { u: o.specAssumed ?? 'billing' }, ok: {}, res: 7, cls: 'u=c', at: 0 };
  if (o.spec === 'live') d.spec = spec;
  else if (o.spec !== undefined) d.closed = { 'd.s1': { kind: o.spec, d: spec.d, res: 7, cls: 'u=c', at: 0 } };
  const g: AttemptRecord = { attemptId: 'd.g-u', nodeId: 'd', kind: 'speculative', epoch: 0, status: 'succeeded', assumed: {}, output: 'billing', costNanoUsd: 30, reservedNanoUsd: 40, createdAtMs: 0, tries: 1, startedAtMs: 1, finishedAtMs: 2, ...o.guess };
  const attempts = new Map<string, AttemptRecord>([['d.g-u', g]]);
  if (o.spec !== undefined) attempts.set('d.s1', { attemptId: 'd.s1', nodeId: 'd', kind: 'speculative', epoch: 1, status: 'running', assumed: spec.assumed, costNanoUsd: 0, createdAtMs: 3, tries: 1 });
  return {
    header: { tenant: 't', runId: 'r', workflowName: 'g', status: 'running', inputs: {}, alpha: undefined, lambdaUsdPerSec: undefined, speculation: true, createdAtMs: 0, finishedAtMs: undefined, reason: undefined, trace: undefined },
    workflow: guessed,
    nodes: new Map<string, NodeState>([
      ['u', { ...initialNodeState(), state: o.upState }],
      ['d', d],
    ]),
    attempts,
    graph: graphOf(guessed),
  };
}

describe('M10 paid guess settlement', () => {
  const settled = (waste: number) => ({ attemptId: 'd.g-u', reservedNano: 40, wasteNano: waste });
  it('waits while the guess still bills or may still be used', () => {
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: { status: 'running', finishedAtMs: undefined } }), 'd', 'u')).toBeUndefined();
    expect(guessSettlement(guessSnapshot({ upState: 'running', guess: {} }), 'd', 'u')).toBeUndefined();
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: {}, spec: 'live' }), 'd', 'u')).toBeUndefined();
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: { reservedNanoUsd: undefined } }), 'd', 'u')).toBeUndefined();
  });
  it('a bought guess is sunk: its billed cost is spent on a hit, a miss, or no use alike (issue 9 item 5)', () => {
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: {}, spec: 'hit' }), 'd', 'u')).toEqual(settled(30));
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: {}, spec: 'miss' }), 'd', 'u')).toEqual(settled(30));
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: {} }), 'd', 'u')).toEqual(settled(30));
    // A speculation launched on another value (e.g. a streamed prefix) did not use the guess.
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: {}, spec: 'hit', specAssumed: 'refund' }), 'd', 'u')).toEqual(settled(30));
    // Cancelled before it started: final, with what it billed (nothing).
    expect(guessSettlement(guessSnapshot({ upState: 'succeeded', guess: { status: 'cancelled', startedAtMs: undefined, finishedAtMs: undefined, output: undefined, costNanoUsd: 0 } }), 'd', 'u')).toEqual(settled(0));
  });
});

describe('M5 learning is never blocked: every WAIT with a guess is scored', () => {
  const wait = (reason: 'below_threshold' | 'stage' | 'budget' | 'killed') => ({ action: 'WAIT' as const, decisionId: 'r:d:runtime', reason });
  const res = { assumed: { u: 'x' }, classes: 'u=c1', cascadeFrom: {} };

  it('keeps the guesses of a WAIT for any reason, with the reason', () => {
    for (const r of ['below_threshold', 'stage', 'budget', 'killed'] as const) {
      expect(guessesToScore(wait(r), res)).toEqual({ d: 'r:d:runtime', assumed: { u: 'x' }, cls: 'u=c1', r });
    }
    // A SPECULATE is scored by its own attempt's outcome, not here.
    expect(guessesToScore({ ...wait('below_threshold'), action: 'SPECULATE', reason: 'ev' }, res)).toBeUndefined();
  });

  it('does not score what is not a guess: a paid stand-in, a cascade source, a settled stream', () => {
    const two = { assumed: { u: 'x', v: 'y' }, classes: 'u=c1,v=c2', cascadeFrom: {} };
    expect(guessesToScore(wait('below_threshold'), { ...two, buy: [{ up: 'u' }] })?.assumed).toEqual({ v: 'y' });
    expect(guessesToScore(wait('below_threshold'), { ...two, cascadeFrom: { v: 'v.s1' } })?.assumed).toEqual({ u: 'x' });
    expect(guessesToScore(wait('below_threshold'), two, new Map([['u', 'x'], ['v', 'y']]))).toBeUndefined();
  });

  it('a below-threshold guess is due as shadow_hit with its reason, and not for an upstream that was speculated on', async () => {
    const s = snapshot(1000, { startedAtMs: 100, finishedAtMs: 900 }, 1000);
    // A WAIT below threshold on u's guess 'x'; u's real output is 'x'.
    const waited: NodeState = {
      ...s.nodes.get('d')!,
      source: 'authoritative',
      auth: 'd.a1',
      shadow: { d: 'r:d:runtime', assumed: { u: 'x' }, cls: 'u=t/w/u->d', r: 'below_threshold' },
    };
    expect(await dueOutcomes(s, 'd', waited, 2000)).toMatchObject([
      { outcomeId: 'r:shadow:d:u', kind: 'shadow_hit', waitReason: 'below_threshold', edgeClass: 't/w/u->d', decisionId: 'r:d:runtime', wasteUsd: 0 },
    ]);
    const wrong = { ...waited, shadow: { ...waited.shadow!, assumed: { u: 'z' } } };
    expect((await dueOutcomes(s, 'd', wrong, 2000)).map((o) => o.kind)).toEqual(['shadow_miss']);
    // The same upstream was also speculated on (a later decision launched): only the attempt's outcome counts.
    const launched: NodeState = { ...waited, closed: { 'd.s1': { kind: 'hit', cls: 'u=t/w/u->d', d: 'r:d:stream', res: 0, at: 900 } } };
    expect((await dueOutcomes(s, 'd', launched, 2000)).map((o) => o.kind)).toEqual(['hit']);
  });
});

describe('M5 learning is never blocked: the guess of a cancelled speculation is scored when its upstream ends', () => {
  /** `d` speculated on u = `guess` (attempt d.s1, cancelled with `edge` blamed, billed 5); u ended with 'x' (or is running). */
  function cancelled(guess: string, o: { upState?: 'succeeded' | 'running'; ok?: Record<string, 0 | 1>; edge?: string } = {}) {
    const s = snapshot(1000, { startedAtMs: 100, finishedAtMs: 300 }, 2000);
    s.nodes.set('u', { ...s.nodes.get('u')!, state: o.upState ?? 'succeeded', ...(o.upState === 'running' ? { output: undefined } : {}) });
    s.attempts.set('d.s1', { ...s.attempts.get('d.s1')!, status: 'cancelled', assumed: { u: guess } });
    const d: NodeState = {
      ...s.nodes.get('d')!,
      source: 'authoritative',
      auth: 'd.a1',
      closed: { 'd.s1': { kind: 'cancelled', cls: 'u=t/w/u->d', d: 'r:d:stream', res: 7, at: 300, ...(o.edge === undefined ? {} : { edge: o.edge }), ...(o.ok === undefined ? {} : { ok: o.ok }) } },
    };
    return { s, d };
  }

  it('a wrong guess cancelled mid-stream is a cancel (its waste) and a shadow_miss (the posterior learns the miss)', async () => {
    const { s, d } = cancelled('z', { edge: 'u' });
    expect(await dueOutcomes(s, 'd', d, 2000)).toMatchObject([
      { outcomeId: 'r:d.s1:u', kind: 'cancelled', wasteUsd: 5e-9, decisionId: 'r:d:stream' },
      { outcomeId: 'r:score:d:d.s1:u', kind: 'shadow_miss', wasteUsd: 0, edgeClass: 't/w/u->d', decisionId: 'r:d:stream' },
    ]);
  });

  it('a right guess cancelled (killed, no slot) is scored shadow_hit; a confirmed edge counts once', async () => {
    const { s, d } = cancelled('x', { edge: '' });
    expect((await dueOutcomes(s, 'd', d, 2000)).map((o) => [o.outcomeId, o.kind])).toEqual([
      ['r:d.s1:u', 'cancelled'],
      ['r:score:d:d.s1:u', 'shadow_hit'],
    ]);
    const confirmed = cancelled('x', { ok: { u: 1 } });
    // Every guess matched and the attempt never ran in time: the confirmed edge is a hit of the class, scored once.
    const kinds = (await dueOutcomes(confirmed.s, 'd', confirmed.d, 2000)).map((o) => o.kind);
    expect(kinds.filter((k) => k === 'hit' || k === 'shadow_hit')).toHaveLength(1);
  });

  it('nothing is scored while the upstream runs, and a miss is not scored twice', async () => {
    const { s, d } = cancelled('z', { edge: 'u', upState: 'running' });
    expect((await dueOutcomes(s, 'd', d, 2000)).map((o) => o.kind)).toEqual(['cancelled']);
    const missed: NodeState = { ...d, closed: { 'd.s1': { ...d.closed['d.s1']!, kind: 'miss' } } };
    expect((await dueOutcomes(cancelled('z', { edge: 'u' }).s, 'd', missed, 2000)).map((o) => o.kind)).toEqual(['miss']);
  });
});

describe('M5/M8: an upstream the stream settled is value, not evidence; the WAIT it overturned is scored', () => {
  const join = parseWorkflow({
    name: 'j',
    nodes: [
      { id: 'u', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'p', expectedOutputTokens: 1, maxTokens: 2 },
      { id: 'v', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'q', expectedOutputTokens: 1, maxTokens: 2 },
      { id: 'd', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: '{{nodes.u.output}} {{nodes.v.output}}', expectedOutputTokens: 1, maxTokens: 2 },
    ],
    edges: [
      { from: 'u', to: 'd', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'refund' } },
      { from: 'v', to: 'd', type: 'passthrough', predictor: { kind: 'fixed', value: 'y' } },
    ],
  });
  const CLS = 'u=t/j/u->d,v=t/j/v->d';
  /**
   * A join d of u (real 'billing') and v (real 'y'): the runtime WAIT guessed u = 'refund', v = 'y';
   * u's stream settled 'billing' and the stream decision launched d.s1 on it (st: u), with v's guess.
   */
  function settledRun(closed: NodeState['closed'][string], attempt: Partial<AttemptRecord> = {}) {
    const s: RunSnapshot = {
      header: { tenant: 't', runId: 'r', workflowName: 'j', status: 'running', inputs: {}, alpha: undefined, lambdaUsdPerSec: undefined, speculation: true, createdAtMs: 0, finishedAtMs: undefined, reason: undefined, trace: undefined },
      workflow: join,
      nodes: new Map<string, NodeState>([
        ['u', { ...initialNodeState(), state: 'succeeded', output: 'billing', finishedAtMs: 1000 }],
        ['v', { ...initialNodeState(), state: 'succeeded', output: 'y', finishedAtMs: 1000 }],
      ]),
      attempts: new Map([['d.s1', { attemptId: 'd.s1', nodeId: 'd', kind: 'speculative', epoch: 1, status: 'succeeded', assumed: { u: 'billing', v: 'y' }, costNanoUsd: 5, createdAtMs: 0, tries: 1, startedAtMs: 100, finishedAtMs: 900, ...attempt } as AttemptRecord]]),
      graph: graphOf(join),
    };
    const d: NodeState = {
      ...initialNodeState(),
      state: 'succeeded',
      output: 'z',
      source: 'speculative',
      auth: 'd.s1',
      finishedAtMs: 1000,
      shadow: { d: 'r:d:runtime', assumed: { u: 'refund', v: 'y' }, cls: CLS, r: 'below_threshold' },
      closed: { 'd.s1': closed },
    };
    s.nodes.set('d', d);
    return { s, d };
  }

  it('a hit books the settled edge with no evidence; the guessed edge is evidence; the WAIT is scored for the settled edge only', async () => {
    const { s, d } = settledRun({ kind: 'hit', d: 'r:d:stream', res: 7, cls: CLS, at: 300, st: { u: 1 } });
    const out = await dueOutcomes(s, 'd', d, 2000);
    expect(out.map((o) => [o.outcomeId, o.kind, o.evidence, o.decisionId])).toEqual([
      ['r:d.s1:u', 'hit', false, 'r:d:stream'],
      ['r:d.s1:v', 'hit', undefined, 'r:d:stream'],
      // u's real guess ('refund') against its real output: scored once, under the WAIT.
      ['r:shadow:d:u', 'shadow_miss', undefined, 'r:d:runtime'],
    ]);
    // Both edges share the seconds saved: the settled edge keeps its value.
    expect(out[0]?.secondsSaved).toBeGreaterThan(0);
    expect(out[0]?.secondsSaved).toBe(out[1]?.secondsSaved);
  });

  it('a cancel scores the guessed edge from the speculation and the settled edge from the WAIT, never the settled label', async () => {
    const { s, d } = settledRun({ kind: 'cancelled', d: 'r:d:stream', res: 7, cls: CLS, at: 300, edge: '', ok: { u: 1 }, st: { u: 1 } }, { status: 'cancelled' });
    const out = await dueOutcomes(s, 'd', d, 2000);
    // u matched (settled, confirmed): a hit with no evidence; v, still unconfirmed, takes the
    // cancel and is scored from the speculation's guess; u's real guess is scored from the WAIT.
    expect(out.map((o) => [o.outcomeId, o.kind, o.evidence])).toEqual([
      ['r:d.s1:u', 'hit', false],
      ['r:d.s1:v', 'cancelled', undefined],
      ['r:score:d:d.s1:v', 'shadow_hit', undefined],
      ['r:shadow:d:u', 'shadow_miss', undefined],
    ]);
    // The same state without `st` (a speculation that guessed u): its outcomes are evidence, and
    // the WAIT's guess of u is not scored again.
    const runtime = settledRun({ kind: 'cancelled', d: 'r:d:runtime2', res: 7, cls: CLS, at: 300, edge: '', ok: { u: 1 } }, { status: 'cancelled' });
    const kinds = (await dueOutcomes(runtime.s, 'd', runtime.d, 2000)).map((o) => [o.outcomeId, o.kind, o.evidence]);
    expect(kinds).toEqual([
      ['r:d.s1:u', 'hit', undefined],
      ['r:d.s1:v', 'cancelled', undefined],
      ['r:score:d:d.s1:v', 'shadow_hit', undefined],
    ]);
  });

  it('a miss blamed on the settled edge carries its waste and no evidence', async () => {
    const { s, d } = settledRun({ kind: 'miss', d: 'r:d:stream', res: 7, cls: CLS, at: 300, edge: 'u', ok: { v: 1 }, st: { u: 1 } });
    const out = await dueOutcomes(s, 'd', d, 2000);
    expect(out.map((o) => [o.outcomeId, o.kind, o.evidence, o.wasteUsd])).toEqual([
      ['r:d.s1:u', 'miss', false, 5e-9],
      ['r:d.s1:v', 'hit', undefined, 0],
      ['r:shadow:d:u', 'shadow_miss', undefined, 0],
    ]);
  });
});
