import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { ATTR } from './attributes.js';
import { JsonLinesFileSpanExporter, type SpanLine } from './file-exporter.js';
import { extractContext, injectContext } from './propagation.js';
import { initTelemetry } from './setup.js';

describe('telemetry: W3C context through job data, JSON-lines export', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gambit-otel-'));
  const file = join(dir, 'spans.jsonl');
  const tel = initTelemetry('test-svc', { exporter: 'file', filePath: file });
  afterAll(async () => {
    await tel.shutdown();
  });

  it('a span started from an extracted carrier joins the injecting span’s trace', async () => {
    const parent = tel.tracer.startSpan('gambit.run');
    const carrier = context.with(trace.setSpan(context.active(), parent), () => injectContext());
    expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const child = tel.tracer.startSpan('gambit.attempt', { attributes: { [ATTR.costUsd]: 0.0012 } }, extractContext(carrier));
    child.end();
    parent.end();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SpanLine);
    const p = lines.find((l) => l.name === 'gambit.run');
    const c = lines.find((l) => l.name === 'gambit.attempt');
    expect(p).toBeDefined();
    expect(c?.traceId).toBe(p?.traceId);
    expect(c?.parentSpanId).toBe(p?.spanId);
    expect(c?.attributes[ATTR.costUsd]).toBe(0.0012);
    expect(c?.service).toBe('test-svc');
  });

  it('the file exporter refuses spans after shutdown', async () => {
    const ex = new JsonLinesFileSpanExporter(join(dir, 'other.jsonl'));
    await ex.shutdown();
    const code = await new Promise<number>((resolve) => ex.export([], (r) => resolve(r.code)));
    expect(code).not.toBe(0);
  });
});
