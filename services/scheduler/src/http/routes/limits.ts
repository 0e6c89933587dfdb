/**
 * Per-tenant caps and admission limits (issue 10 items 4-5): the operator sets them
 * (`PUT /v1/admin/tenants/:tenant/limits`, given fields replace stored ones); the operator and
 * the tenant itself read them (the tenant through `GET /v1/tenants/:tenant/limits`).
 * `GET /v1/tenants/:tenant/spend` shows the spend booked in the current period against the
 * spend cap (issue 10 item 3).
 */
import { nanoToUsd, TenantParamsSchema } from '@gambit/shared';
import { LimitsPatchSchema, spendPeriodField } from '../../limits.js';
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
  app.get('/v1/tenants/:tenant/spend', { schema: { params: TenantParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, () => `tenant ${req.params.tenant} not found`);
    const now = Date.now();
    const limits = await deps.limits.get(tenant, now);
    const period = limits.spendCapPeriod ?? 'month';
    const { bookedNanoUsd, heldNanoUsd } = await deps.spend.spent(tenant, period, now);
    return {
      period,
      periodKey: spendPeriodField(period, now),
      spentNanoUsd: bookedNanoUsd,
      spentUsd: nanoToUsd(bookedNanoUsd),
      heldNanoUsd,
      heldUsd: nanoToUsd(heldNanoUsd),
      spendCapUsd: limits.spendCapUsd ?? null,
    };
  });
}
