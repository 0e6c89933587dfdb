/**
 * Issue 11 D2 routes (operator only): list the nodes whose irreversible tool waits for an
 * operator, and resolve one as succeeded (with its output) or failed. Errors use the API's one
 * error shape; bad input names the field and changes nothing.
 */
import { SafeIdSchema } from '@gambit/shared';
import { z } from 'zod';
import type { AttentionService } from '../../attention.js';
import { requireOperator } from '../auth.js';
import type { App } from '../deps.js';

export const AttentionParamsSchema = z.object({ tenant: SafeIdSchema, runId: SafeIdSchema, nodeId: z.string().min(1).max(128) }).strict();
export const AttentionListQuerySchema = z.object({ tenant: SafeIdSchema.optional() }).strict();
export const ResolveAttentionBodySchema = z.discriminatedUnion('resolution', [
  z.object({ resolution: z.literal('succeeded'), output: z.string().max(1_000_000) }).strict(),
  z.object({ resolution: z.literal('failed'), error: z.string().min(1).max(10_000) }).strict(),
]);

export function registerAttentionRoutes(app: App, deps: { readonly attention?: AttentionService }): void {
  const attention = deps.attention;
  if (attention === undefined) return;
  app.get('/v1/attention', { schema: { querystring: AttentionListQuerySchema } }, async (req) => {
    requireOperator(req);
    return { attention: await attention.list(req.query.tenant) };
  });
  app.post('/v1/runs/:tenant/:runId/nodes/:nodeId/attention', { schema: { params: AttentionParamsSchema, body: ResolveAttentionBodySchema } }, async (req) => {
    requireOperator(req);
    return attention.resolve(req.params.tenant, req.params.runId, req.params.nodeId, req.body);
  });
}
