/**
 * One tracer provider per process. The exporter is configuration: `otlp` (HTTP, to
 * OTEL_EXPORTER_OTLP_ENDPOINT or `otlpUrl`), `console`, `file` (JSON lines at `filePath`), or
 * `none` (spans are created but dropped: near-zero cost). `shutdown()` flushes and is idempotent.
 */
import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { z } from 'zod';
import { JsonLinesFileSpanExporter } from './file-exporter.js';

export const TelemetryConfigSchema = z.object({
  exporter: z.enum(['otlp', 'console', 'file', 'none']).default('none'),
  otlpUrl: z.string().url().optional(),
  filePath: z.string().optional(),
});
export type TelemetryConfig = z.infer<typeof TelemetryConfigSchema>;

export interface Telemetry {
  readonly tracer: Tracer;
  shutdown(): Promise<void>;
}

export function initTelemetry(serviceName: string, config: TelemetryConfig): Telemetry {
  let exporter: SpanExporter | undefined;
  if (config.exporter === 'otlp') exporter = new OTLPTraceExporter(config.otlpUrl !== undefined ? { url: config.otlpUrl } : {});
  else if (config.exporter === 'console') exporter = new ConsoleSpanExporter();
  else if (config.exporter === 'file') {
    if (config.filePath === undefined) throw new Error('telemetry exporter "file" needs filePath (OTEL_FILE_PATH)');
    exporter = new JsonLinesFileSpanExporter(config.filePath);
  }
  const spanProcessors: SpanProcessor[] = [];
  if (exporter !== undefined) {
    // The file exporter is synchronous and local: export each span as it ends so nothing is lost
    // when a process is killed; network exporters batch.
    spanProcessors.push(config.exporter === 'file' ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter));
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.namespace': 'gambit', 'process.pid': process.pid }),
    spanProcessors,
  });
  provider.register();
  let done: Promise<void> | undefined;
  return {
    tracer: trace.getTracer('gambit', '0.1.0'),
    shutdown() {
      done ??= provider.shutdown();
      return done;
    },
  };
}

/** Reads telemetry configuration from the standard OTEL_* variables (called from a service's env.ts). */
export function telemetryConfigFromEnv(env: Record<string, string | undefined>): TelemetryConfig {
  return TelemetryConfigSchema.parse({
    exporter: env.GAMBIT_TRACES_EXPORTER ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined ? 'otlp' : 'none'),
    otlpUrl: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces` : undefined),
    filePath: env.GAMBIT_TRACES_FILE,
  });
}
