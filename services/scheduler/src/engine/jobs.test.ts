import { expandOpJob, OpJobSchema, parseWorkflow } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { attemptIdFor, jobIdFor, MAX_PRIORITY, planGuess, planLaunch, priorityFromEv, renderOp } from './jobs.js';

const wf = parseWorkflow({
  name: 'w',
  nodes: [
    { id: 'a', kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt: 'Q {{inputs.q}}', expectedOutputTokens: 2, maxTokens: 4 },
    {
      id: 'b',
      kind: 'llm',
      provider: 'simulated',
      model: 'gpt-4o-mini',
      system: 'sys {{inputs.q}}',
      prompt: 'Use {{nodes.a.output}}',
      expectedOutputTokens: 2,
      maxTokens: 4,
      simulate: { output: 'reply to {{nodes.a.output}}' },
    },
    { id: 't', kind: 'tool', tool: 'send_message', effects: 'staged', args: { to: 'x', body: 'got {{nodes.a.output}}', n: 3 } },
  ],
  edges: [
    { from: 'a', to: 'b', type: 'router_k_way', k: 2 },
    { from: 'a', to: 't', type: 'passthrough' },
  ],
});
const node = (id: string) => wf.nodes.find((n) => n.id === id) ?? wf.nodes[0]!;

describe('jobs (M8 launch payloads, M10 priority)', () => {
  it('renders prompts, system, simulated outputs and tool args on the given outputs, seeded by run and node', () => {
    const op = renderOp(node('b'), { runId: 'r1', inputs: { q: 'hi' }, outputs: { a: 'billing' } });
    expect(op).toMatchObject({ kind: 'llm', system: 'sys hi', prompt: 'Use billing', seed: 'r1:b', simulate: { output: 'reply to billing' } });
    const tool = renderOp(node('t'), { runId: 'r1', inputs: {}, outputs: { a: 'refund' } });
    expect(tool).toEqual({ kind: 'tool', tool: 'send_message', args: { to: 'x', body: 'got refund', n: 3 }, effects: 'staged', priceUsd: 0 });
  });

  it('fails loudly when an upstream output is missing', () => {
    expect(() => renderOp(node('b'), { runId: 'r', inputs: { q: 1 }, outputs: {} })).toThrow();
  });

  it('builds a queued attempt, its job and a deterministic, colon-free job id on the right queue', () => {
    const op = renderOp(node('a'), { runId: 'r1', inputs: { q: 'x' }, outputs: {} });
    const auth = planLaunch({ tenant: 't', runId: 'r1', workflow: 'w', node: node('a'), epoch: 3, kind: 'authoritative', op, assumed: {}, streamPartials: true, nowMs: 5 });
    expect(auth.attemptId).toBe(attemptIdFor('a', 3, 'authoritative'));
    expect(auth.attempt).toMatchObject({ status: 'queued', epoch: 3, kind: 'authoritative', costNanoUsd: 0 });
    expect(auth.intent).toMatchObject({ queue: 'ops', jobId: jobIdFor('t', 'r1', auth.attemptId) });
    expect(auth.intent.jobId).not.toContain(':');
    const spec = planLaunch({ tenant: 't', runId: 'r1', workflow: 'w', node: node('a'), epoch: 4, kind: 'speculative', op, assumed: { z: 'g' }, decisionId: 'd', streamPartials: false, priority: 7, nowMs: 5 });
    expect(spec.intent).toMatchObject({ queue: 'spec', priority: 7 });
    expect(spec.job.assumed).toEqual({ z: 'g' });
    expect(spec.attemptId).not.toBe(auth.attemptId);
  });

  it('issue 13 item 3: the enqueued payload leaves out what the worker fills back in, and parses to the job', () => {
    const op = renderOp(node('a'), { runId: 'r1', inputs: { q: 'x' }, outputs: {} });
    const trace = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    const auth = planLaunch({ tenant: 't', runId: 'r1', workflow: 'w', node: node('a'), epoch: 1, kind: 'authoritative', op, assumed: {}, streamPartials: false, trace, defaultTimeoutMs: 9_000, nowMs: 5 });
    const data = auth.intent.data as Record<string, unknown>;
    const read = (d: unknown, jobId: string, kind: 'authoritative' | 'speculative') => OpJobSchema.parse(expandOpJob(JSON.parse(JSON.stringify(d)), { jobId, kind }));
    // What the job id (t~r1~a.a1) and the lane say is not in the payload, nor the defaults.
    for (const f of ['v', 'tenant', 'runId', 'attemptId', 'nodeId', 'epoch', 'kind', 'assumed', 'streamPartials', 'enqueuedAtMs']) expect(data).not.toHaveProperty(f);
    expect(data.op).not.toHaveProperty('seed');
    expect(data).toMatchObject({ workflow: 'w', trace: trace.traceparent, opClass: expect.stringMatching(/^#[0-9a-f]+$/), timeoutMs: 9_000 });
    expect(auth.job.opClass).toBe(`llm:simulated/gpt-4o-mini${String(data.opClass)}`);
    expect(read(data, auth.intent.jobId, 'authoritative')).toEqual(auth.job);
    // Without its job id it is not a job (the worker rejects it, naming the fields).
    expect(OpJobSchema.safeParse(expandOpJob(data, { jobId: 'not-a-job-id', kind: 'authoritative' })).success).toBe(false);
    // A payload written before (every field, enqueuedAtMs included) parses the same, under any job id.
    const old = { ...auth.job, enqueuedAtMs: 5 };
    expect(read(old, auth.intent.jobId, 'authoritative')).toEqual(old);
    expect(read(old, 'r1-a1', 'authoritative')).toEqual(old);
    // What differs from the defaults is kept: guesses, streaming, a seed of its own, a trace carrier with more entries.
    const trace2 = { ...trace, tracestate: 'x=1' };
    const spec = planLaunch({ tenant: 't', runId: 'r1', workflow: 'w', node: node('a'), epoch: 2, kind: 'speculative', op: { ...op, seed: 'r1:a:guess:x' } as typeof op, assumed: { z: 'g' }, streamPartials: true, trace: trace2, nowMs: 5 });
    const specData = spec.intent.data as Record<string, unknown>;
    expect(specData).toMatchObject({ assumed: { z: 'g' }, streamPartials: true, op: { seed: 'r1:a:guess:x' }, trace: trace2 });
    expect(specData).not.toHaveProperty('epoch');
    expect(read(specData, spec.intent.jobId, 'speculative')).toEqual(spec.job);
    // A guess's attempt id (`<node>.g-<upstream>`) does not say its epoch (0): kept.
    const guess = planGuess({ tenant: 't', runId: 'r1', workflow: 'w', nodeId: 'b', upstream: 'a', op, decisionId: 'r1:b:plan', priority: 3, reservedNanoUsd: 10, nowMs: 5 });
    const guessData = guess.intent.data as Record<string, unknown>;
    expect(guessData).toMatchObject({ epoch: 0 });
    expect(guessData).not.toHaveProperty('nodeId');
    expect(read(guessData, guess.intent.jobId, 'speculative')).toEqual(guess.job);
  });

  it('issue 10 item 4: the job carries the node timeoutMs, else the run default, else none (the worker cap)', () => {
    const timed = parseWorkflow({
      name: 'w2',
      nodes: [{ id: 'a', kind: 'tool', tool: 'echo', effects: 'none', args: { text: 'x' }, timeoutMs: 250 }],
      edges: [],
    }).nodes[0]!;
    const base = { tenant: 't', runId: 'r1', workflow: 'w', epoch: 1, kind: 'authoritative' as const, assumed: {}, streamPartials: false, nowMs: 5 };
    const op = renderOp(node('a'), { runId: 'r1', inputs: { q: 'x' }, outputs: {} });
    expect(planLaunch({ ...base, node: timed, op, defaultTimeoutMs: 9_000 }).job.timeoutMs).toBe(250);
    expect(planLaunch({ ...base, node: node('a'), op, defaultTimeoutMs: 9_000 }).job.timeoutMs).toBe(9_000);
    expect(planLaunch({ ...base, node: node('a'), op }).job.timeoutMs).toBeUndefined();
    expect(() => parseWorkflow({ name: 'w3', nodes: [{ id: 'a', kind: 'tool', tool: 'echo', args: {}, timeoutMs: 0 }], edges: [] })).toThrow(/timeoutMs/);
  });

  it('M10: higher EV gets a lower (earlier) priority, always within BullMQ bounds', () => {
    const evs = [1, 0.1, 1e-3, 1e-6, 1e-12];
    const ps = evs.map(priorityFromEv);
    for (let i = 1; i < ps.length; i++) expect(ps[i]).toBeGreaterThan(ps[i - 1] as number);
    expect(priorityFromEv(100)).toBe(1);
    expect(priorityFromEv(0)).toBe(MAX_PRIORITY);
    expect(priorityFromEv(-5)).toBe(MAX_PRIORITY);
    expect(priorityFromEv(Number.NaN)).toBe(MAX_PRIORITY);
    expect(priorityFromEv(1e-300)).toBe(MAX_PRIORITY);
  });
});
