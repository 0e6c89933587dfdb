/** Run routes (docs/api.md, Runs): submit, read, decisions, cancel, dial (M3). Tenant-scoped. */
import { CancelBodySchema, DialBodySchema, RunParamsSchema, SubmitRunBodySchema } from '@gambit/shared';
import { tenantFor } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

const notFound = (p: { tenant: string; runId: string }) => () => `run ${p.tenant}/${p.runId} not found`;

export function registerRunRoutes(app: App, deps: HttpDeps): void {
  app.post('/v1/runs', { schema: { body: SubmitRunBodySchema } }, async (req, reply) => {
    const tenant = tenantFor(req, req.body.tenant, () => `tenant ${req.body.tenant} not found`);
    // Issue 11 D3: the write is abandoned if the client goes away or the deadline passes first.
    const r = await deps.runs.submit(tenant, req.body, {
      deadlineMs: Date.now() + deps.apiDeadlineMs,
      abandoned: () => req.raw.socket?.destroyed === true,
    });
    return reply.status(r.created ? 201 : 200).send({ runId: r.runId, tenant });
  });
  app.get('/v1/runs/:tenant/:runId', { schema: { params: RunParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    return deps.runs.get(tenant, req.params.runId);
  });
  app.get('/v1/runs/:tenant/:runId/decisions', { schema: { params: RunParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    return { decisions: await deps.runs.decisions(tenant, req.params.runId) };
  });
  app.post('/v1/runs/:tenant/:runId/cancel', { schema: { params: RunParamsSchema, body: CancelBodySchema.optional() } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    return deps.runs.cancel(tenant, req.params.runId, req.body?.reason ?? 'user cancel');
  });
  app.put('/v1/runs/:tenant/:runId/dial', { schema: { params: RunParamsSchema, body: DialBodySchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    await deps.runs.setDial(tenant, req.params.runId, req.body.alpha);
    return { alpha: req.body.alpha };
  });
}
