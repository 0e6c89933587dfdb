/**
 * The platform API's lists and the run event stream (docs/api.md, Lists and Events): runs,
 * tenants and stats with filters and cursors (tenant-scoped: a tenant key sees only its own
 * tenant, naming another answers 404), classes and kills (operator only: class internals), and
 * a run's events as server-sent events.
 */
import {
  ClassListQuerySchema,
  KillListQuerySchema,
  NotFoundError,
  RunListQuerySchema,
  RunParamsSchema,
  StatsQuerySchema,
} from '@gambit/shared';
import type { KeySpace, RedisLike } from '@gambit/shared/redis';
import type { FastifyRequest } from 'fastify';
import { runEvents } from '../../events.js';
import { listRuns, listTenants, runStats } from '../../listing.js';
import type { OperatorService } from '../../operator.js';
import { requireOperator, tenantFor } from '../auth.js';
import type { App } from '../deps.js';

export interface PlatformDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly operator: OperatorService;
  readonly nowMs: () => number;
  /** How often the event stream re-reads the run. */
  readonly eventPollMs: number;
}

/** The tenants a list covers: the key's own, or the filter, or (operator, no filter) every known one. */
async function tenantsInScope(deps: PlatformDeps, req: FastifyRequest, filter: string | undefined): Promise<string[]> {
  if (req.auth.kind === 'tenant' || filter !== undefined) return [tenantFor(req, filter, () => `tenant ${filter} not found`)];
  return listTenants(deps.redis, deps.ks);
}

export function registerPlatformRoutes(app: App, deps: PlatformDeps): void {
  app.get('/v1/runs', { schema: { querystring: RunListQuerySchema } }, async (req) => {
    return listRuns(deps.redis, deps.ks, await tenantsInScope(deps, req, req.query.tenant), req.query);
  });

  app.get('/v1/tenants', async (req) => {
    return { tenants: req.auth.kind === 'tenant' ? [req.auth.tenant] : await listTenants(deps.redis, deps.ks) };
  });

  app.get('/v1/stats', { schema: { querystring: StatsQuerySchema } }, async (req) => {
    return runStats(deps.redis, deps.ks, await tenantsInScope(deps, req, req.query.tenant), req.query, deps.nowMs());
  });

  app.get('/v1/classes', { schema: { querystring: ClassListQuerySchema } }, async (req) => {
    requireOperator(req);
    return deps.operator.listClasses(req.query);
  });

  app.get('/v1/kills', { schema: { querystring: KillListQuerySchema } }, async (req) => {
    requireOperator(req);
    return deps.operator.listKills(req.query);
  });

  app.get('/v1/runs/:tenant/:runId/events', { schema: { params: RunParamsSchema } }, async (req, reply) => {
    const p = req.params;
    const tenant = tenantFor(req, p.tenant, () => `run ${p.tenant}/${p.runId} not found`);
    const ac = new AbortController();
    const events = runEvents(deps.redis, deps.ks, tenant, p.runId, { pollMs: deps.eventPollMs, signal: ac.signal });
    // The first event is read before the answer starts, so an unknown run is a plain 404.
    const first = await events.next();
    if (first.done === true) throw new NotFoundError(`run ${tenant}/${p.runId} not found`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    req.raw.on('close', () => ac.abort());
    let seq = 0;
    const write = (e: { event: string; data: unknown }) => {
      seq++;
      res.write(`id: ${seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    };
    // A comment every 15 s keeps proxies from closing an idle stream.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    try {
      write(first.value);
      for await (const e of events) write(e);
    } catch (err) {
      res.write(`event: error\ndata: ${JSON.stringify({ code: 'INTERNAL', message: String(err) })}\n\n`);
    } finally {
      clearInterval(keepAlive);
      ac.abort();
      res.end();
    }
  });
}
