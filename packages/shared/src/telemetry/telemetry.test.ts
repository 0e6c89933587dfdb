/**
 * Telemetry set-up (issue 12 items 1 and 4): W3C context through job data, OTLP/JSON-lines file
 * export, the run span emitted with the ids chosen at submission, configuration from the OTEL_*
 * variables, and the log correlation fields.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { traceFields } from '../logger.js';
import { ATTR } from './attributes.js';
import { parseKeyValueList, TelemetryEnvShape, telemetryConfigFromEnv } from './config.js';
import { OtlpJsonLinesFileSpanExporter } from './file-exporter.js';
import { extractContext, injectContext } from './propagation.js';
import { beginRunSpan, endRunSpan } from './run-span.js';
import { initTelemetry } from './setup.js';
import { z } from 'zod';

interface Line {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: Record<string, unknown> }> };
    scopeSpans: Array<{ spans: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; startTimeUnixNano: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }> }>;
  }>;
}

function readSpans(file: string) {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .flatMap((l) => {
      const doc = JSON.parse(l) as Line;
      return doc.resourceSpans.flatMap((rs) =>
        rs.scopeSpans.flatMap((ss) =>
          ss.spans.map((s) => ({
            ...s,
            service: rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
            attrs: Object.fromEntries(s.attributes.map((a) => [a.key, Object.values(a.value)[0]])),
          })),
        ),
      );
    });
}

const parseEnv = (env: Record<string, string>) => z.object(TelemetryEnvShape).parse(env);

describe('telemetry: W3C context through job data, OTLP/JSON-lines export, the run span', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gambit-otel-'));
  const file = join(dir, 'spans.jsonl');
  const tel = initTelemetry(telemetryConfigFromEnv(parseEnv({ GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: file, OTEL_SERVICE_NAME: 'test-svc' }), 'default-name'), {
    instanceId: 'i-1',
  });
  afterAll(async () => {
    await tel.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a span started from an extracted carrier joins the injecting span’s trace; the file holds OTLP/JSON', () => {
    const parent = tel.tracer.startSpan('parent');
    const carrier = context.with(trace.setSpan(context.active(), parent), () => injectContext());
    expect(carrier.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const child = tel.tracer.startSpan('chat m', { attributes: { [ATTR.costUsd]: 0.0012 } }, extractContext(carrier));
    child.end();
    parent.end();
    const spans = readSpans(file);
    const p = spans.find((s) => s.name === 'parent');
    const c = spans.find((s) => s.name === 'chat m');
    expect(c?.traceId).toBe(p?.traceId);
    expect(c?.parentSpanId).toBe(p?.spanId);
    expect(c?.attrs[ATTR.costUsd]).toBe(0.0012);
    expect(c?.service).toBe('test-svc');
  });

  it('the run span is emitted at the end with the ids chosen at submission, under the caller’s span', () => {
    const caller = tel.tracer.startSpan('caller');
    const carrier = context.with(trace.setSpan(context.active(), caller), () => beginRunSpan());
    caller.end();
    const callerCtx = caller.spanContext();
    const [, traceId, spanId] = carrier.traceparent?.split('-') ?? [];
    expect(traceId).toBe(callerCtx.traceId);
    // A child made before the run span exists (a decision, a worker try) already points at it.
    tel.tracer.startSpan('gambit.decision', {}, extractContext(carrier)).end();
    const startMs = Date.now() - 5_000;
    expect(endRunSpan(tel.tracer, carrier, 'gambit.run', { startMs, endMs: Date.now(), attributes: { [ATTR.runStatus]: 'succeeded' } })).toBe(true);
    const spans = readSpans(file);
    const run = spans.find((s) => s.name === 'gambit.run');
    expect(run).toMatchObject({ traceId, spanId, parentSpanId: callerCtx.spanId });
    expect(Number(BigInt(run?.startTimeUnixNano ?? '0') / 1_000_000n)).toBe(startMs);
    expect(spans.find((s) => s.name === 'gambit.decision')?.parentSpanId).toBe(spanId);
    // Without a caller, the run span is a root.
    const root = beginRunSpan(context.active());
    expect(Object.keys(root)).toEqual(['traceparent']);
  });

  it('log lines carry the active span’s trace_id and span_id', () => {
    const span = tel.tracer.startSpan('x');
    const f = context.with(trace.setSpan(context.active(), span), () => traceFields());
    span.end();
    expect(f).toEqual({ trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId, trace_flags: '01' });
    expect(traceFields()).toEqual({});
  });

  it('the file exporter refuses spans after shutdown', async () => {
    const ex = new OtlpJsonLinesFileSpanExporter(join(dir, 'other.jsonl'));
    await ex.shutdown();
    const code = await new Promise<number>((resolve) => ex.export([], (r) => resolve(r.code)));
    expect(code).not.toBe(0);
  });
});

describe('telemetry configuration from OTEL_* variables', () => {
  it('service name, resource attributes, exporters and endpoints by the specification', () => {
    const c = telemetryConfigFromEnv(
      parseEnv({
        OTEL_SERVICE_NAME: 'sched-eu',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod, k8s.pod.name=a%2Cb',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20x',
        OTEL_METRICS_EXPORTER: 'otlp,prometheus',
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
      }),
      'gambit-scheduler',
    );
    expect(c.serviceName).toBe('sched-eu');
    expect(c.resourceAttributes).toEqual({ 'deployment.environment.name': 'prod', 'k8s.pod.name': 'a,b' });
    expect(c.traces).toEqual({ exporter: 'otlp', otlp: { url: 'http://collector:4318/v1/traces', protocol: 'http/protobuf', headers: { authorization: 'Bearer x' } } });
    expect(c.metrics).toMatchObject({ push: ['otlp'], otlp: { url: 'http://collector:4318/v1/metrics', protocol: 'http/json' }, intervalMs: 60_000 });
  });

  it('defaults: no export, the service’s name; `otlp` without an endpoint goes to the specification’s default', () => {
    const none = telemetryConfigFromEnv(parseEnv({}), 'gambit-worker');
    expect(none).toMatchObject({ serviceName: 'gambit-worker', traces: { exporter: 'none' }, metrics: { push: [] } });
    expect(telemetryConfigFromEnv(parseEnv({ OTEL_TRACES_EXPORTER: 'otlp' }), 'w').traces.otlp?.url).toBe('http://localhost:4318/v1/traces');
  });

  it('refuses what it cannot honour, naming the variable', () => {
    expect(() => parseEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/grpc is not supported/);
    expect(() => parseEnv({ OTEL_RESOURCE_ATTRIBUTES: 'novalue' })).toThrow(/key=value/);
    expect(() => telemetryConfigFromEnv(parseEnv({ OTEL_TRACES_EXPORTER: 'none', GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: '/tmp/x' }), 's')).toThrow(ValidationError);
    expect(() => telemetryConfigFromEnv(parseEnv({ GAMBIT_TRACES_EXPORTER: 'file' }), 's')).toThrow(/GAMBIT_TRACES_FILE/);
    expect(() => parseKeyValueList('a=%E0%A4%A', 'X')).toThrow(/percent-encoding/);
  });
});
