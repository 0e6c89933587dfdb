/**
 * The run-end webhook's configuration and delivery log (docs/api.md, Webhooks). Tenant-scoped:
 * a tenant key manages its own tenant's webhook; the secret is write-only.
 */
import { TenantParamsSchema, WebhookBodySchema } from '@gambit/shared';
import { z } from 'zod';
import type { WebhookService } from '../../webhooks.js';
import { tenantFor } from '../auth.js';
import type { App } from '../deps.js';

const DeliveriesQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }).strict();

export function registerWebhookRoutes(app: App, webhooks: WebhookService): void {
  const tenantOf = (req: Parameters<typeof tenantFor>[0], named: string) => tenantFor(req, named, () => `tenant ${named} not found`);
  app.put('/v1/tenants/:tenant/webhook', { schema: { params: TenantParamsSchema, body: WebhookBodySchema } }, async (req) => {
    return webhooks.configure(tenantOf(req, req.params.tenant), req.body);
  });
  app.get('/v1/tenants/:tenant/webhook', { schema: { params: TenantParamsSchema } }, async (req) => {
    return { webhook: await webhooks.get(tenantOf(req, req.params.tenant)) };
  });
  app.delete('/v1/tenants/:tenant/webhook', { schema: { params: TenantParamsSchema } }, async (req) => {
    return { removed: await webhooks.remove(tenantOf(req, req.params.tenant)) };
  });
  app.get('/v1/tenants/:tenant/webhook/deliveries', { schema: { params: TenantParamsSchema, querystring: DeliveriesQuerySchema } }, async (req) => {
    return { deliveries: await webhooks.deliveries(tenantOf(req, req.params.tenant), req.query.limit) };
  });
}
