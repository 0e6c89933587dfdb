/**
 * Per-tenant caps and admission limits (issue 10 items 4-5): the operator sets them
 * (`PUT /v1/admin/tenants/:tenant/limits`, given fields replace stored ones); the operator and
 * the tenant itself read them (the tenant through `GET /v1/tenants/:tenant/limits`).
 */
import { TenantParamsSchema } from '@gambit/shared';
import { LimitsPatchSchema } from '../../limits.js';
import { requireOperator, tenantFor } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

export function registerLimitRoutes(app: App, deps: HttpDeps): void {
  app.put('/v1/admin/tenants/:tenant/limits', { schema: { params: TenantParamsSchema, body: LimitsPatchSchema } }, async (req) => {
    requireOperator(req);
    return deps.limits.put(req.params.tenant, req.body);
  });
  app.get('/v1/admin/tenants/:tenant/limits', { schema: { params: TenantParamsSchema } }, async (req) => {
    requireOperator(req);
    return deps.limits.get(req.params.tenant);
  });
  app.get('/v1/tenants/:tenant/limits', { schema: { params: TenantParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, () => `tenant ${req.params.tenant} not found`);
    return deps.limits.get(tenant);
  });
}
