/**
 * M5 priors and posterior modes per tenant, dependency type and edge class, changeable at run time
 * (docs/api.md, Priors; issue 9 item 7). A tenant reads and replaces its own; the change takes
 * effect on the next decision (the posterior is the new prior plus the evidence each class has
 * gathered) and the tenant's live speculations are re-decided with it. `gambit replay --fit`
 * writes a body for PUT.
 */
import { DEFAULT_PRIORS, TenantParamsSchema, TenantPriorsSchema } from '@gambit/shared';
import { tenantFor } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

const notFound = (p: { tenant: string }) => () => `tenant ${p.tenant} not found`;

export function registerPriorRoutes(app: App, deps: HttpDeps): void {
  app.get('/v1/tenants/:tenant/priors', { schema: { params: TenantParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    const cfg = await deps.tenants.get(tenant);
    return { tenant, priors: cfg.priors, defaults: { ...DEFAULT_PRIORS, router_k_way: 'Beta(1, k - 1)' } };
  });
  app.put('/v1/tenants/:tenant/priors', { schema: { params: TenantParamsSchema, body: TenantPriorsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    const cfg = await deps.tenants.putPriors(tenant, req.body);
    // M8: live speculations are re-decided under the new priors.
    void deps.runs.reconcileTenant(tenant).catch((err: unknown) => deps.log.warn({ err: String(err), tenant }, 'reconciling after a priors change failed'));
    return { tenant, priors: cfg.priors };
  });
}
