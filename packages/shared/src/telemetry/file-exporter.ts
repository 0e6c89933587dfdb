/**
 * A span exporter that appends one JSON line per finished span to a file. Each process writes
 * its own file; merging the files of one run's processes gives the whole trace (used by tests
 * and by operators without a collector).
 */
import { appendFileSync } from 'node:fs';
import { ExportResultCode, hrTimeToMilliseconds, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface SpanLine {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  service: string;
  status: { code: number; message?: string };
  attributes: Record<string, unknown>;
}

export function spanToLine(span: ReadableSpan): SpanLine {
  const ctx = span.spanContext();
  const parent = span.parentSpanContext?.spanId;
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    ...(parent !== undefined ? { parentSpanId: parent } : {}),
    name: span.name,
    kind: span.kind,
    startMs: hrTimeToMilliseconds(span.startTime),
    endMs: hrTimeToMilliseconds(span.endTime),
    service: String(span.resource.attributes['service.name'] ?? ''),
    status: { code: span.status.code, ...(span.status.message !== undefined ? { message: span.status.message } : {}) },
    attributes: { ...span.attributes },
  };
}

export class JsonLinesFileSpanExporter implements SpanExporter {
  private closed = false;
  constructor(private readonly path: string) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.closed) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    try {
      const text = spans.map((s) => JSON.stringify(spanToLine(s))).join('\n');
      if (text.length > 0) appendFileSync(this.path, `${text}\n`);
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
