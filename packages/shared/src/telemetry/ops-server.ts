/**
 * The ops listener every Gambit process serves on `OPS_HOST:OPS_PORT` (0 = a free port, logged):
 * `/metrics` (Prometheus text from the OpenTelemetry meter), `/healthz` (alive: 200 whenever the
 * event loop answers) and `/readyz` (200 or 503 with the checks that failed). Not behind API keys;
 * bind it to an address only the cluster reaches. `close()` is idempotent.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Logger } from '../logger.js';
import type { Readiness } from './health.js';

export interface OpsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface OpsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly prometheus: PrometheusExporter;
  readonly readiness: Readiness;
  readonly log: Logger;
  /** Extra fields of the /healthz answer (service id, ...). */
  readonly identity?: Record<string, string>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** The /healthz and /readyz answers, shared by the ops listener and the scheduler's API. */
export async function healthAnswer(path: '/healthz' | '/readyz', readiness: Readiness, identity: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  if (path === '/healthz') return { status: 200, body: { status: 'alive', ...identity } };
  const r = await readiness.evaluate();
  return { status: r.ready ? 200 : 503, body: { status: r.ready ? 'ready' : 'not_ready', ...identity, checks: r.checks } };
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} not allowed`, issues: [] } });
      return;
    }
    if (path === '/metrics') {
      opts.prometheus.getMetricsRequestHandler(req, res);
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      healthAnswer(path, opts.readiness, opts.identity).then(
        (a) => json(res, a.status, a.body),
        (err: unknown) => json(res, 503, { status: 'not_ready', error: String(err) }),
      );
      return;
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}`, issues: [] } });
  };
  const server = createServer(handle);
  // Probes and scrapes are short: do not let idle keep-alive sockets hold a shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
  opts.log.info({ host: opts.host, port }, 'ops listening');
  let closed: Promise<void> | undefined;
  return {
    host: opts.host,
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
