/**
 * API key management (issue 10 item 1), operator only: create (the key is returned once), list,
 * revoke, rotate (a new key, then the old one revoked). Only HMACs are stored (auth.ts).
 */
import { CreateKeyBodySchema, KeyParamsSchema, NotFoundError, TenantParamsSchema } from '@gambit/shared';
import { requireOperator } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

export function registerKeyRoutes(app: App, deps: HttpDeps): void {
  app.post('/v1/admin/tenants/:tenant/keys', { schema: { params: TenantParamsSchema, body: CreateKeyBodySchema.optional() } }, async (req, reply) => {
    requireOperator(req);
    const created = await deps.keys.create(req.params.tenant, req.body?.label);
    return reply.status(201).send(created);
  });
  app.get('/v1/admin/tenants/:tenant/keys', { schema: { params: TenantParamsSchema } }, async (req) => {
    requireOperator(req);
    return { keys: await deps.keys.list(req.params.tenant) };
  });
  app.delete('/v1/admin/tenants/:tenant/keys/:keyId', { schema: { params: KeyParamsSchema } }, async (req) => {
    requireOperator(req);
    return deps.keys.revoke(req.params.tenant, req.params.keyId);
  });
  app.post('/v1/admin/tenants/:tenant/keys/:keyId/rotate', { schema: { params: KeyParamsSchema } }, async (req, reply) => {
    requireOperator(req);
    const old = (await deps.keys.list(req.params.tenant)).find((k) => k.keyId === req.params.keyId);
    if (old === undefined || old.revokedAtMs !== null) throw new NotFoundError(`key ${req.params.keyId} of tenant ${req.params.tenant} not found`);
    const created = await deps.keys.create(req.params.tenant, old.label ?? undefined);
    const revoked = await deps.keys.revoke(req.params.tenant, req.params.keyId);
    return reply.status(201).send({ ...created, revoked });
  });
}
