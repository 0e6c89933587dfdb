/** Tenant configuration routes (docs/api.md, Tenants): a tenant reads and sets its own. */
import { TenantConfigBodySchema, TenantParamsSchema } from '@gambit/shared';
import { checkRetention } from '../../retention.js';
import { tenantConfigView } from '../../tenants.js';
import { tenantFor } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

const notFound = (p: { tenant: string }) => () => `tenant ${p.tenant} not found`;

export function registerTenantRoutes(app: App, deps: HttpDeps): void {
  app.put('/v1/tenants/:tenant/config', { schema: { params: TenantParamsSchema, body: TenantConfigBodySchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    // Issue 10 item 9: a tenant's retention is at most its operator-set cap (422 naming it).
    if (req.body.retentionSec !== undefined) checkRetention(req.body.retentionSec, await deps.limits.get(tenant));
    const cfg = await deps.tenants.put(tenant, req.body);
    // M8: the tenant's live speculations are re-decided with the new configuration.
    void deps.runs.reconcileTenant(tenant).catch((err: unknown) => deps.log.warn({ err: String(err), tenant }, 'reconciling after a config change failed'));
    return tenantConfigView(cfg);
  });
  app.get('/v1/tenants/:tenant/config', { schema: { params: TenantParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    const [cfg, budget] = await Promise.all([deps.tenants.get(tenant), deps.tenants.budget(tenant)]);
    return { ...tenantConfigView(cfg), budget };
  });
}
