/** Workflow registration routes (docs/api.md, Workflows): a tenant's own registry. */
import { parseWorkflow, RegisterWorkflowBodySchema, WorkflowListQuerySchema } from '@gambit/shared';
import { checkStructureCaps } from '../../limits.js';
import { checkLlmPredictors } from '../../runs.js';
import { tenantFor } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

export function registerWorkflowRoutes(app: App, deps: HttpDeps): void {
  app.post('/v1/workflows', { schema: { body: RegisterWorkflowBodySchema } }, async (req, reply) => {
    const tenant = tenantFor(req, req.body.tenant, () => `tenant ${req.body.tenant} not found`);
    const wf = parseWorkflow(req.body.workflow, { priceTable: deps.priceTable, ...(deps.knownTools === undefined ? {} : { knownTools: deps.knownTools }) });
    checkLlmPredictors(wf, deps.priceTable);
    checkStructureCaps(wf, await deps.limits.get(tenant));
    await deps.workflows.put(tenant, wf);
    return reply.status(201).send({ tenant, name: wf.name, version: wf.version });
  });
  app.get('/v1/workflows', { schema: { querystring: WorkflowListQuerySchema } }, async (req) => {
    const tenant = tenantFor(req, req.query.tenant, () => `tenant ${req.query.tenant} not found`);
    return { workflows: await deps.workflows.list(tenant) };
  });
}
