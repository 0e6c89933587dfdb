/**
 * A span exporter that appends each batch of finished spans to a file as one line of OTLP/JSON
 * (an `ExportTraceServiceRequest`: `{"resourceSpans":[...]}`), the format the OpenTelemetry
 * Collector's file exporter writes. Each process writes its own file (or appends to a shared
 * one); `gambit import otlp` and `gambit replay` read the files as they are, and so does any tool
 * that reads OTLP/JSON.
 */
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type * as OtlpTransformer from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

const decoder = new TextDecoder();
// Loaded on first use (a CommonJS package: the same module an `import` loads), so a process that
// writes no trace file starts without it (issue 11 item 4).
const requireOtel = createRequire(import.meta.url);

/** One OTLP/JSON line for a batch of spans. */
export function spansToOtlpJson(spans: ReadableSpan[]): string {
  const { JsonTraceSerializer } = requireOtel('@opentelemetry/otlp-transformer') as typeof OtlpTransformer;
  const bytes = JsonTraceSerializer.serializeRequest(spans);
  if (bytes === undefined) throw new Error('OTLP/JSON serialisation failed');
  return decoder.decode(bytes);
}

export class OtlpJsonLinesFileSpanExporter implements SpanExporter {
  private closed = false;
  constructor(private readonly path: string) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.closed) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    try {
      if (spans.length > 0) appendFileSync(this.path, `${spansToOtlpJson(spans)}\n`);
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  async shutdown(): Promise<void> {
    this.closed = true;
  }

  async forceFlush(): Promise<void> {}
}
