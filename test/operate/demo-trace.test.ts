/**
 * A trace exported during the demo (issue 12 "done when"): `gambit demo` with its services
 * exporting to one OTLP/JSON-lines file. Opened in order, every run is one trace, from the API
 * request that submitted it (the demo's client sends no `traceparent`, so the scheduler's SERVER
 * span is the root; test/e2e/tracing.test.ts shows a caller's span continued) through the run
 * span to the last worker span, with names and attributes by the GenAI conventions; and the file
 * imports into `gambit replay`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FlatSpan, flattenOtlp, importOtlp } from '@gambit/replay';
import { startProcess } from '@gambit/testkit';
import { afterAll, describe, expect, inject, it } from 'vitest';

const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

describe('the demo exports one trace per run by the conventions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gambit-demo-trace-'));
  const file = join(dir, 'traces.jsonl');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every run: POST /v1/runs → gambit.run → decisions/launches → chat/execute_tool spans, one trace; it replays', async () => {
    const p = startProcess('demo', bin, ['demo', '--runs', '1', '--time-scale', '0.05', '--workers', '1', '--concurrency', '4'], {
      REDIS_URL: inject('redisUrl'),
      OPENAI_API_KEY: undefined,
      ANTHROPIC_API_KEY: undefined,
      // Inherited by every service the demo starts: all append to one file.
      GAMBIT_TRACES_EXPORTER: 'file',
      GAMBIT_TRACES_FILE: file,
    });
    expect(await p.exited(), p.lines.join('\n')).toBe(0);
    const docs = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
    const spans = flattenOtlp(docs);
    const runSpans = spans.filter((s) => s.name === 'gambit.run');
    // 4 workflows × (speculation on, off) × 1 run.
    expect(runSpans.length).toBe(8);
    for (const run of runSpans) {
      // Run ids are per tenant (the demo reuses them across its tenants).
      const [runId, tenant] = [run.attributes['gambit.run.id'], run.attributes['gambit.tenant']];
      const mine = (s: FlatSpan) => s.attributes['gambit.run.id'] === runId && s.attributes['gambit.tenant'] === tenant;
      expect(spans.filter((s) => mine(s) && s.traceId !== run.traceId), `run ${tenant}/${runId} in one trace`).toEqual([]);
      const trace = spans.filter((s) => s.traceId === run.traceId).sort((a, b) => a.startMs - b.startMs);
      const byId = new Map(trace.map((s) => [s.spanId, s]));
      const root = trace[0] as FlatSpan;
      expect(root).toMatchObject({ name: 'POST /v1/runs', kind: 2 });
      expect(root.parentSpanId).toBeUndefined();
      expect(run.parentSpanId).toBe(root.spanId);
      // Every other span descends from the run span; the worker's are last in the chain.
      const ancestors = (s: FlatSpan): string[] => (s.parentSpanId === undefined ? [] : [s.parentSpanId, ...ancestors(byId.get(s.parentSpanId) as FlatSpan)]);
      for (const s of trace) if (s !== root && s !== run) expect(ancestors(s), `${s.name} under the run span`).toContain(run.spanId);
      const work = trace.filter((s) => s.service === 'gambit-worker');
      expect(work.length).toBeGreaterThan(0);
      for (const w of work) {
        expect(w.name).toMatch(/^(chat \S+|execute_tool \S+)$/);
        if (w.name.startsWith('chat ')) {
          expect(w.kind).toBe(3);
          expect(w.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'simulated', 'gen_ai.request.model': w.name.slice(5) });
        } else expect(w.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': w.name.slice(13) });
      }
      expect(run.endMs).toBeGreaterThanOrEqual(Math.max(...work.map((w) => w.startMs)));
    }
    const runs = importOtlp(docs);
    expect(runs.length).toBe(8);
    for (const r of runs) expect(r.operations.length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
