/**
 * One tracer provider and one meter provider per process, configured from `TelemetryConfig`
 * (config.ts): the resource by the conventions (service.name from OTEL_SERVICE_NAME or the
 * service's default, service.namespace `gambit`, service.version, service.instance.id, host and
 * process, then OTEL_RESOURCE_ATTRIBUTES); traces to OTLP (http/protobuf or http/json), the
 * console, an OTLP/JSON-lines file, or nowhere; metrics always readable as Prometheus text (the
 * ops listener's /metrics) and pushed over OTLP or to the console when configured. The provider
 * is registered globally so the W3C propagator and the AsyncLocalStorage context manager work
 * for `context.with` (the logger's trace ids). `shutdown()` flushes both and is idempotent.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { Meter, Tracer } from '@opentelemetry/api';
import type * as OtlpHttpMetrics from '@opentelemetry/exporter-metrics-otlp-http';
import type * as OtlpProtoMetrics from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type * as OtlpHttpTraces from '@opentelemetry/exporter-trace-otlp-http';
import type * as OtlpProtoTraces from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleMetricExporter, type MetricReader, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { OtlpTarget, TelemetryConfig } from './config.js';
import { OtlpJsonLinesFileSpanExporter } from './file-exporter.js';
import { createMetrics, type MeteredMetrics } from './metrics.js';
import { GambitTracer, PresetIdGenerator } from './run-span.js';

export const GAMBIT_VERSION = '0.1.0';

export interface Telemetry {
  /** The process's tracer (spans are built even with no exporter; see `tracing`). */
  readonly tracer: Tracer;
  /** True when spans go somewhere (an exporter other than `none`). */
  readonly tracing: boolean;
  readonly meter: Meter;
  readonly metrics: MeteredMetrics;
  /** Reads the meter as Prometheus text (served on the ops listener's /metrics). */
  readonly prometheus: PrometheusExporter;
  shutdown(): Promise<void>;
}

// The OTLP exporters (and protobufjs behind the protobuf ones) are loaded only when configured:
// a process that exports nothing over OTLP starts without them (issue 11 item 4: a replacement
// process after a crash is ready sooner). They are CommonJS packages, so `require` loads the very
// module an `import` would, synchronously.
const requireOtel = createRequire(import.meta.url);

// Why each module is bound to a const before `new`: TypeScript 7 erases `new (x as T).C(...)` to
// `new x.C(...)` without the parentheses, which calls `new` on `requireOtel` itself.
function traceExporter(t: OtlpTarget): SpanExporter {
  const opts = { url: t.url, headers: t.headers };
  if (t.protocol === 'http/json') {
    const m = requireOtel('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttpTraces;
    return new m.OTLPTraceExporter(opts);
  }
  const m = requireOtel('@opentelemetry/exporter-trace-otlp-proto') as typeof OtlpProtoTraces;
  return new m.OTLPTraceExporter(opts);
}

function otlpMetricExporter(t: OtlpTarget | undefined): PushMetricExporter {
  if (t?.protocol === 'http/json') {
    const m = requireOtel('@opentelemetry/exporter-metrics-otlp-http') as typeof OtlpHttpMetrics;
    return new m.OTLPMetricExporter({ url: t.url, headers: t.headers });
  }
  const m = requireOtel('@opentelemetry/exporter-metrics-otlp-proto') as typeof OtlpProtoMetrics;
  return new m.OTLPMetricExporter({ url: t?.url, headers: t?.headers ?? {} });
}

function metricReaders(config: TelemetryConfig): MetricReader[] {
  const readers: MetricReader[] = [];
  for (const push of config.metrics.push) {
    const t = config.metrics.otlp;
    const exporter = push === 'console' ? new ConsoleMetricExporter() : otlpMetricExporter(t);
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: config.metrics.intervalMs, exportTimeoutMillis: Math.min(30_000, config.metrics.intervalMs) }));
  }
  return readers;
}

/** `instanceId` becomes service.instance.id (the scheduler, worker or estimator id). */
export function initTelemetry(config: TelemetryConfig, identity: { instanceId: string }): Telemetry {
  const resource = resourceFromAttributes({
    'service.namespace': 'gambit',
    'service.version': GAMBIT_VERSION,
    'service.instance.id': identity.instanceId,
    'host.name': hostname(),
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
    ...config.resourceAttributes,
    // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (the specification's order).
    'service.name': config.serviceName,
  });

  let exporter: SpanExporter | undefined;
  if (config.traces.exporter === 'otlp' && config.traces.otlp !== undefined) exporter = traceExporter(config.traces.otlp);
  else if (config.traces.exporter === 'console') exporter = new ConsoleSpanExporter();
  else if (config.traces.exporter === 'file') {
    if (config.traces.filePath === undefined) throw new Error('traces exporter "file" needs GAMBIT_TRACES_FILE');
    exporter = new OtlpJsonLinesFileSpanExporter(config.traces.filePath);
  }
  const spanProcessors: SpanProcessor[] = [];
  // The file exporter is synchronous and local: each span is written as it ends, so nothing is
  // lost when a process is killed; network exporters batch.
  if (exporter !== undefined) spanProcessors.push(config.traces.exporter === 'file' ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter));
  const ids = new PresetIdGenerator();
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors, idGenerator: ids });
  tracerProvider.register();

  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ resource, readers: [prometheus, ...metricReaders(config)] });
  const meter = meterProvider.getMeter('gambit', GAMBIT_VERSION);

  let done: Promise<void> | undefined;
  return {
    tracer: new GambitTracer(tracerProvider.getTracer('gambit', GAMBIT_VERSION), ids),
    tracing: exporter !== undefined,
    meter,
    metrics: createMetrics(meter, { maxTenants: config.metrics.maxTenants }),
    prometheus,
    shutdown() {
      done ??= Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]).then(() => undefined);
      return done;
    },
  };
}
