/** Workflow registration routes (docs/api.md, Workflows): a tenant's own registry. */
import { parseWorkflow, RegisterWorkflowBodySchema, WorkflowListQuerySchema } from '@gambit/shared';
import { decodeCursor, encodeCursor } from '../../cursor.js';
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
    const q = req.query;
    const after = q.cursor === undefined ? undefined : String(decodeCursor(q.cursor, 'cursor').n);
    const all = (await deps.workflows.list(tenant)).filter((w) => (q.prefix === undefined || w.name.startsWith(q.prefix)) && (after === undefined || w.name > after));
    const page = all.slice(0, q.limit);
    const last = page.at(-1);
    return { workflows: page, nextCursor: all.length > q.limit && last !== undefined ? encodeCursor({ n: last.name }) : null };
  });
}
