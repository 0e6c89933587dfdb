/**
 * The scheduler's HTTP API (docs/api.md) on fastify. Every body, parameter and query is
 * validated with the zod schemas of packages/shared/src/schemas/http.ts; bad input is a 4xx
 * `{ error: { code, message, issues: [{ path, message }] } }` naming the field, and nothing is
 * stored for it. Errors map to statuses in one place (`toHttpError`).
 */
import {
  CancelBodySchema,
  DialBodySchema,
  type ErrorBody,
  isGambitError,
  KillBodySchema,
  type Logger,
  parseWorkflow,
  type PriceTable,
  RegisterWorkflowBodySchema,
  RunParamsSchema,
  SubmitRunBodySchema,
  TenantConfigBodySchema,
  TenantParamsSchema,
  ValidationError,
  WorkflowListQuerySchema,
  zodIssues,
} from '@gambit/shared';
import Fastify, { type FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { checkLlmPredictors, type RunService } from '../runs.js';
import { type TenantStore, tenantConfigView } from '../tenants.js';
import type { WorkflowRegistry } from '../workflows.js';

export interface Operator {
  kill(body: z.infer<typeof KillBodySchema>): Promise<unknown>;
  revive(body: z.infer<typeof KillBodySchema>): Promise<unknown>;
  classInfo(classId: string): Promise<unknown>;
  health(): Promise<Record<string, unknown>>;
}

export interface HttpDeps {
  readonly runs: RunService;
  readonly tenants: TenantStore;
  readonly workflows: WorkflowRegistry;
  readonly operator: Operator;
  readonly priceTable: PriceTable;
  readonly knownTools?: ReadonlySet<string>;
  readonly bodyLimitBytes: number;
  readonly log: Logger;
}

function parse<S extends z.ZodType>(schema: S, value: unknown, root: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ValidationError(zodIssues(r.error, root));
  return r.data;
}

export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (err instanceof ValidationError) return { status: 400, body: { error: { code: err.code, message: err.message, issues: err.issues } } };
  if (isGambitError(err)) {
    const status = err.code === 'NOT_FOUND' ? 404 : err.code === 'CONFLICT' ? 409 : err.code === 'PAYLOAD_TOO_LARGE' ? 413 : err.retry === 'non-retryable' ? 400 : 503;
    return { status, body: { error: { code: err.code, message: err.message, issues: [] } } };
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413)
    return { status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE', message: e.message ?? 'body too large', issues: [{ path: '(body)', message: 'body too large' }] } } };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return { status: e.statusCode, body: { error: { code: 'VALIDATION', message: e.message ?? 'bad request', issues: [{ path: '(body)', message: e.message ?? 'bad request' }] } } };
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error', issues: [] } } };
}

export function buildServer(deps: HttpDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: deps.bodyLimitBytes });

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) deps.log.error({ err: String(err), stack: (err as Error).stack, url: req.url }, 'request failed');
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, issues: [] } });
  });

  app.post('/v1/runs', async (req, reply) => {
    const body = parse(SubmitRunBodySchema, req.body, '');
    const r = await deps.runs.submit(body);
    return reply.status(r.created ? 201 : 200).send({ runId: r.runId, tenant: body.tenant });
  });
  app.get('/v1/runs/:tenant/:runId', async (req) => {
    const p = parse(RunParamsSchema, req.params, '');
    return deps.runs.get(p.tenant, p.runId);
  });
  app.get('/v1/runs/:tenant/:runId/decisions', async (req) => {
    const p = parse(RunParamsSchema, req.params, '');
    return { decisions: await deps.runs.decisions(p.tenant, p.runId) };
  });
  app.post('/v1/runs/:tenant/:runId/cancel', async (req) => {
    const p = parse(RunParamsSchema, req.params, '');
    const b = parse(CancelBodySchema, req.body, '');
    return deps.runs.cancel(p.tenant, p.runId, b.reason ?? 'user cancel');
  });
  app.put('/v1/runs/:tenant/:runId/dial', async (req) => {
    const p = parse(RunParamsSchema, req.params, '');
    const b = parse(DialBodySchema, req.body, '');
    await deps.runs.setDial(p.tenant, p.runId, b.alpha);
    return { alpha: b.alpha };
  });
  app.put('/v1/tenants/:tenant/config', async (req) => {
    const p = parse(TenantParamsSchema, req.params, '');
    const b = parse(TenantConfigBodySchema, req.body, '');
    const cfg = await deps.tenants.put(p.tenant, b);
    // M8: the tenant's live speculations are re-decided with the new configuration.
    void deps.runs.reconcileTenant(p.tenant).catch((err: unknown) => deps.log.warn({ err: String(err), tenant: p.tenant }, 'reconciling after a config change failed'));
    return tenantConfigView(cfg);
  });
  app.get('/v1/tenants/:tenant/config', async (req) => {
    const p = parse(TenantParamsSchema, req.params, '');
    const [cfg, budget] = await Promise.all([deps.tenants.get(p.tenant), deps.tenants.budget(p.tenant)]);
    return { ...tenantConfigView(cfg), budget };
  });
  app.post('/v1/workflows', async (req, reply) => {
    const b = parse(RegisterWorkflowBodySchema, req.body, '');
    const wf = parseWorkflow(b.workflow, { priceTable: deps.priceTable, ...(deps.knownTools === undefined ? {} : { knownTools: deps.knownTools }) });
    checkLlmPredictors(wf, deps.priceTable);
    await deps.workflows.put(b.tenant, wf);
    return reply.status(201).send({ tenant: b.tenant, name: wf.name, version: wf.version });
  });
  app.get('/v1/workflows', async (req) => {
    const q = parse(WorkflowListQuerySchema, req.query, '');
    return { workflows: await deps.workflows.list(q.tenant) };
  });
  app.get('/v1/classes/:classId', async (req) => {
    const classId = String((req.params as { classId?: string }).classId ?? '');
    return deps.operator.classInfo(classId);
  });
  app.post('/v1/kill', async (req) => deps.operator.kill(parse(KillBodySchema, req.body, '')));
  app.post('/v1/revive', async (req) => deps.operator.revive(parse(KillBodySchema, req.body, '')));
  app.get('/healthz', async () => deps.operator.health());
  return app;
}
