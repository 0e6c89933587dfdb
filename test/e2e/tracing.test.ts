/**
 * Traces by the conventions, across processes (issue 12 item 4). A caller's `traceparent` is
 * continued by the scheduler's HTTP server span; the run span (submission to end, emitted by the
 * scheduler that ends the run) is its child; decisions, launches and outcomes are the run span's
 * children, and the worker's LLM and tool spans (`chat {model}` CLIENT, `execute_tool {name}`)
 * are theirs: one trace per run, from the caller's span to the last worker span. Log lines carry
 * the trace ids, and the exported files import into `gambit replay`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FlatSpan, flattenOtlp, importOtlp } from '@gambit/replay';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { until } from '../operate/helpers.js';
import { eagerTenant, type RunView, type Stack, startStack, tenantKey, waitForRun } from './harness.js';
import { routerChain } from './workflows.js';

const dir = mkdtempSync(join(tmpdir(), 'gambit-traces-'));
const schedulerFile = join(dir, 'scheduler.jsonl');
const workerFile = join(dir, 'worker.jsonl');
const docs = (f: string): unknown[] => {
  try {
    return readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
  } catch {
    return [];
  }
};
const allSpans = (): FlatSpan[] => flattenOtlp([...docs(schedulerFile), ...docs(workerFile)]);

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;

/** route → answer (router edge, speculated) → echo tool. */
function workflow(name: string, actual: string, guess: string) {
  const wf = routerChain(name, actual, guess, { routerTtftMs: 300, downTtftMs: 1500 });
  return {
    ...wf,
    nodes: [...wf.nodes, { id: 'notify', kind: 'tool', tool: 'echo', effects: 'none', args: { text: 'done: {{nodes.answer.output}}' }, expectedDurationMs: 10 }],
    edges: [...wf.edges, { from: 'answer', to: 'notify', type: 'tool_args' }],
  };
}

async function submitWithCaller(url: string, body: unknown): Promise<{ runId: string; traceId: string; callerSpanId: string }> {
  const traceId = randomBytes(16).toString('hex');
  const callerSpanId = randomBytes(8).toString('hex');
  const key = await tenantKey(url, (body as { tenant: string }).tenant);
  const res = await fetch(`${url}/v1/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, traceparent: `00-${traceId}-${callerSpanId}-01` },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return { runId: ((await res.json()) as { runId: string }).runId, traceId, callerSpanId };
}

describe('traces across scheduler and worker by the OpenTelemetry conventions (single redis)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      { kind: 'single', url: inject('redisUrl') },
      {
        label: 'e2e-trace',
        schedulers: 1,
        workers: 1,
        schedulerEnv: { GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: schedulerFile, OTEL_SERVICE_NAME: 'gambit-scheduler-e2e', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test' },
        workerEnv: { GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: workerFile },
      },
    );
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one trace per run from the caller’s span to the last worker span, GenAI names and attributes, imported by gambit replay', async () => {
    const url = stack.urls[0] as string;
    const tenant = await eagerTenant(url, 'trace');
    const hit = await submitWithCaller(url, { tenant, workflow: workflow('tracewf', 'billing', 'billing'), inputs: { q: 't' } });
    const miss = await submitWithCaller(url, { tenant, workflow: workflow('tracewf', 'billing', 'refund'), inputs: { q: 'u' } });
    const views: RunView[] = [await waitForRun(url, tenant, hit.runId), await waitForRun(url, tenant, miss.runId)];
    for (const v of views) expect(v.status).toBe('succeeded');
    // The run span is emitted when the run ends; the worker writes its span when its try ends.
    await until('both run spans exported', async () => (allSpans().filter((s) => s.name === 'gambit.run').length >= 2 ? true : undefined), 15_000);

    for (const [k, sub] of [hit, miss].entries()) {
      const view = views[k];
      const spans = allSpans().filter((s) => s.traceId === sub.traceId);
      // Every span of the run, in either process, is in the caller's trace; no other trace has any.
      expect(allSpans().filter((s) => s.attributes['gambit.run.id'] === sub.runId && s.traceId !== sub.traceId)).toEqual([]);
      const ordered = [...spans].sort((a, b) => a.startMs - b.startMs);
      const server = ordered[0] as FlatSpan;
      expect(server).toMatchObject({ name: 'POST /v1/runs', kind: SERVER, parentSpanId: sub.callerSpanId, service: 'gambit-scheduler-e2e' });
      expect(server.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/v1/runs', 'http.response.status_code': 201 });
      const run = spans.find((s) => s.name === 'gambit.run');
      expect(run?.parentSpanId).toBe(server.spanId);
      expect(run?.attributes).toMatchObject({ 'gambit.run.id': sub.runId, 'gambit.run.status': 'succeeded', 'gambit.tenant': tenant });
      // It lasts the run: from submission to the end, after every worker span has started.
      expect(run?.startMs).toBe(view.createdAtMs);
      expect(Math.abs((run?.endMs ?? 0) - view.finishedAtMs)).toBeLessThanOrEqual(100);
      const work = spans.filter((s) => s.service === 'gambit-worker');
      expect(work.length).toBeGreaterThanOrEqual(3);
      for (const w of work) expect(w.startMs).toBeLessThanOrEqual(run?.endMs ?? 0);
      // Worker spans are children of the scheduler's decision or launch spans, which are the run span's.
      const schedIds = new Map(spans.filter((s) => s.service !== 'gambit-worker').map((s) => [s.spanId, s]));
      for (const w of work) expect(schedIds.get(w.parentSpanId ?? '')?.parentSpanId).toBe(run?.spanId);
      for (const s of spans.filter((x) => ['gambit.decision', 'gambit.node', 'gambit.outcome'].includes(x.name))) expect(s.parentSpanId).toBe(run?.spanId);
      const chats = work.filter((s) => s.name === 'chat gpt-4o-mini');
      expect(chats.length).toBeGreaterThanOrEqual(2);
      for (const c of chats) {
        expect(c.kind).toBe(CLIENT);
        expect(c.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'simulated', 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.request.max_tokens': expect.any(Number) });
        expect(c.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      }
      const accepted = chats.filter((c) => c.attributes['gambit.attempt.outcome'] === 'OK');
      for (const c of accepted) {
        expect(c.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
        expect(c.attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
        expect(c.attributes['gambit.cost_usd']).toBeGreaterThan(0);
      }
      const tool = work.find((s) => s.name === 'execute_tool echo');
      expect(tool?.kind).toBe(INTERNAL);
      expect(tool?.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'echo', 'gambit.attempt.outcome': 'OK' });
      const decision = spans.find((s) => s.name === 'gambit.decision' && s.attributes['gambit.decision.action'] === 'SPECULATE');
      for (const key of ['p', 'ev_usd', 'threshold_usd', 'c_spec_usd', 'alpha', 'lambda_usd_per_s']) expect(typeof decision?.attributes[`gambit.decision.${key}`], key).toBe('number');
      const outcome = spans.find((s) => s.name === 'gambit.outcome');
      expect(outcome?.attributes).toMatchObject({ 'gambit.edge.from': 'route', 'gambit.edge.to': 'answer', 'gambit.outcome.kind': k === 0 ? 'hit' : 'miss' });
    }
    // The miss: its speculative try was cut short and says why.
    const missSpec = allSpans().find((s) => s.traceId === miss.traceId && s.attributes['gambit.attempt.kind'] === 'speculative' && s.name.startsWith('chat '));
    expect(missSpec?.attributes['error.type']).toBe('aborted');
    // Resource by the conventions.
    expect(docs(schedulerFile).join('')).toBeDefined();
    const res = (docs(schedulerFile)[0] as { resourceSpans: Array<{ resource: { attributes: Array<{ key: string }> } }> }).resourceSpans[0]?.resource.attributes.map((a) => a.key);
    expect(res).toEqual(expect.arrayContaining(['service.name', 'service.namespace', 'service.instance.id', 'deployment.environment.name']));

    // Log lines written while handling the run carry its trace and span ids.
    const traced = (lines: string[], traceId: string) => lines.filter((l) => l.includes(`"trace_id":"${traceId}"`) && l.includes('"span_id":'));
    expect(traced(stack.schedulers[0]?.lines ?? [], hit.traceId).some((l) => l.includes('"msg":"decision"'))).toBe(true);
    expect(traced(stack.workers[0]?.lines ?? [], hit.traceId).some((l) => l.includes('"msg":"attempt recorded"'))).toBe(true);

    // Gambit's own export is a replay trace: operations in the schedule without speculation,
    // the workflow's dependencies, and the scored guesses as opportunities.
    const runs = importOtlp([...docs(schedulerFile), ...docs(workerFile)]);
    const byId = new Map(runs.map((r) => [r.runId, r]));
    for (const [sub, matched] of [
      [hit, true],
      [miss, false],
    ] as const) {
      const r = byId.get(sub.runId);
      expect(r?.tenant).toBe(tenant);
      expect(r?.operations.map((o) => [o.id, o.kind, o.dependencies])).toEqual([
        ['route', 'llm', []],
        ['answer', 'llm', ['route']],
        ['notify', 'tool', ['answer']],
      ]);
      expect(r?.operations.every((o) => (o.costNanoUsd ?? 0) >= 0 && o.durationMs > 0)).toBe(true);
      expect(r?.opportunities).toEqual([expect.objectContaining({ from: 'route', to: 'answer', type: 'router_k_way', k: 2, matched })]);
      // Issue 9 item 8: the miss's speculative try, cut short, is the answer's own `speculative` operation.
      const answer = r?.operations.find((o) => o.id === 'answer');
      if (matched) expect(answer?.speculative).toBeUndefined();
      else expect(answer?.speculative).toMatchObject({ kind: 'llm', cancelled: true, 'gen_ai.request.model': answer?.['gen_ai.request.model'] });
    }
  });
});
