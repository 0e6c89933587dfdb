/**
 * The platform API's lists and the run event stream (docs/api.md, Lists and Events): runs,
 * tenants, classes, kills and stats with filters and cursors, and a run's events as server-sent
 * events. Who sees what follows the caller: a tenant key sees only its own tenant's runs, stats
 * and classes; operators see everything (a request without `request.auth` is an operator's).
 */
import {
  ClassListQuerySchema,
  KillListQuerySchema,
  NotFoundError,
  RunListQuerySchema,
  RunParamsSchema,
  StatsQuerySchema,
  ValidationError,
  zodIssues,
} from '@gambit/shared';
import type { KeySpace, RedisLike } from '@gambit/shared/redis';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { runEvents } from '../../events.js';
import { listRuns, listTenants, runStats } from '../../listing.js';
import type { OperatorService } from '../../operator.js';

export interface PlatformDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly operator: OperatorService;
  readonly nowMs: () => number;
  /** How often the event stream re-reads the run. */
  readonly eventPollMs: number;
}

export type Caller = { kind: 'operator' } | { kind: 'tenant'; tenant: string };

/** The caller as the auth layer decorated the request; no auth layer means an operator. */
export function callerOf(req: FastifyRequest): Caller {
  const auth = (req as FastifyRequest & { auth?: Caller }).auth;
  return auth ?? { kind: 'operator' };
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ValidationError(zodIssues(r.error, ''));
  return r.data;
}

/** The tenants a list covers: the caller's own, or the filter, or (operators) every known one. */
async function tenantsInScope(deps: PlatformDeps, caller: Caller, filter: string | undefined): Promise<string[]> {
  if (caller.kind === 'tenant') {
    // Another tenant's data answers as an unknown one does (no disclosure that it exists).
    if (filter !== undefined && filter !== caller.tenant) throw new NotFoundError(`tenant "${filter}" not found`);
    return [caller.tenant];
  }
  return filter !== undefined ? [filter] : listTenants(deps.redis, deps.ks);
}

export function registerPlatformRoutes(app: FastifyInstance, deps: PlatformDeps): void {
  app.get('/v1/runs', async (req) => {
    const q = parse(RunListQuerySchema, req.query);
    return listRuns(deps.redis, deps.ks, await tenantsInScope(deps, callerOf(req), q.tenant), q);
  });

  app.get('/v1/tenants', async (req) => {
    const caller = callerOf(req);
    return { tenants: caller.kind === 'tenant' ? [caller.tenant] : await listTenants(deps.redis, deps.ks) };
  });

  app.get('/v1/stats', async (req) => {
    const q = parse(StatsQuerySchema, req.query);
    return runStats(deps.redis, deps.ks, await tenantsInScope(deps, callerOf(req), q.tenant), q, deps.nowMs());
  });

  app.get('/v1/classes', async (req) => {
    const q = parse(ClassListQuerySchema, req.query);
    const caller = callerOf(req);
    const [tenant] = caller.kind === 'tenant' ? await tenantsInScope(deps, caller, q.tenant) : [q.tenant];
    return deps.operator.listClasses({ ...q, tenant });
  });

  app.get('/v1/kills', async (req) => {
    const q = parse(KillListQuerySchema, req.query);
    const caller = callerOf(req);
    const [tenant] = caller.kind === 'tenant' ? await tenantsInScope(deps, caller, q.tenant) : [q.tenant];
    return deps.operator.listKills({ ...q, tenant });
  });

  app.get('/v1/runs/:tenant/:runId/events', async (req, reply) => {
    const p = parse(RunParamsSchema, req.params);
    await tenantsInScope(deps, callerOf(req), p.tenant);
    const ac = new AbortController();
    const events = runEvents(deps.redis, deps.ks, p.tenant, p.runId, { pollMs: deps.eventPollMs, signal: ac.signal });
    // The first event is read before the answer starts, so an unknown run is a plain 404.
    const first = await events.next();
    if (first.done === true) {
      return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `run ${p.tenant}/${p.runId} not found`, issues: [] } });
    }
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
