/**
 * HTTP server spans and metrics of the scheduler's API by the OpenTelemetry HTTP conventions
 * (issue 12 item 4): one SERVER span per request named `{method} {route}`, continuing the
 * caller's W3C `traceparent` when one came in, with `http.request.method`, `http.route`,
 * `url.path`, `http.response.status_code`, and `error.type` on 5xx; the route handler runs in
 * that span's context, so a submitted run's span is its child (one trace from the caller's span
 * to the last worker span) and the handler's log lines carry its ids. The histogram
 * `http.server.request.duration` is recorded for every request. Added as fastify hooks, which
 * apply to the routes registered before them too.
 */
import { ATTR, extractContext } from '@gambit/shared/telemetry';
import { context, type Meter, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const spans = new WeakMap<FastifyRequest, { span: Span; startNs: bigint }>();

function headerCarrier(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['traceparent', 'tracestate']) {
    const v = req.headers[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export function instrumentHttp(app: FastifyInstance, deps: { tracer: Tracer; meter: Meter }): void {
  const duration = deps.meter.createHistogram('http.server.request.duration', {
    description: 'Duration of HTTP server requests',
    unit: 's',
    advice: { explicitBucketBoundaries: HTTP_DURATION_BUCKETS },
  });

  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url;
    const parent = extractContext(headerCarrier(req));
    const span = deps.tracer.startSpan(
      route === undefined ? req.method : `${req.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR.httpMethod]: req.method,
          [ATTR.urlPath]: req.url.split('?')[0],
          [ATTR.urlScheme]: req.protocol,
          ...(route !== undefined ? { [ATTR.httpRoute]: route } : {}),
          ...(req.socket.localPort !== undefined ? { [ATTR.serverPort]: req.socket.localPort } : {}),
          ...(req.ip !== undefined ? { [ATTR.clientAddress]: req.ip } : {}),
          ...(typeof req.headers['user-agent'] === 'string' ? { [ATTR.userAgent]: req.headers['user-agent'] } : {}),
        },
      },
      parent,
    );
    spans.set(req, { span, startNs: process.hrtime.bigint() });
    done();
  });

  // The handler (and everything it awaits) runs in the server span's context.
  app.addHook('preHandler', (req, _reply, done) => {
    const s = spans.get(req);
    if (s === undefined) return done();
    context.with(trace.setSpan(extractContext(undefined), s.span), done);
  });

  app.addHook('onResponse', (req, reply, done) => {
    const s = spans.get(req);
    if (s !== undefined) {
      spans.delete(req);
      const status = reply.statusCode;
      const route = req.routeOptions.url;
      s.span.setAttribute(ATTR.httpStatus, status);
      if (status >= 500) {
        s.span.setAttribute(ATTR.errorType, String(status));
        s.span.setStatus({ code: SpanStatusCode.ERROR });
      }
      s.span.end();
      duration.record(Number(process.hrtime.bigint() - s.startNs) / 1e9, {
        [ATTR.httpMethod]: req.method,
        [ATTR.httpStatus]: status,
        ...(route !== undefined ? { [ATTR.httpRoute]: route } : {}),
        ...(status >= 500 ? { [ATTR.errorType]: String(status) } : {}),
      });
    }
    done();
  });
}
