/**
 * Issue 11 D2 routes: list the nodes whose irreversible tool waits for an operator, and resolve
 * one as succeeded (with its output) or failed. Errors use the API's one error shape (the
 * server's error handler); bad input names the field and changes nothing.
 */
import { SafeIdSchema, ValidationError, zodIssues } from '@gambit/shared';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AttentionService } from '../../attention.js';

export const AttentionParamsSchema = z.object({ tenant: SafeIdSchema, runId: SafeIdSchema, nodeId: z.string().min(1).max(128) }).strict();
export const AttentionListQuerySchema = z.object({ tenant: SafeIdSchema.optional() }).strict();
export const ResolveAttentionBodySchema = z.discriminatedUnion('resolution', [
  z.object({ resolution: z.literal('succeeded'), output: z.string().max(1_000_000) }).strict(),
  z.object({ resolution: z.literal('failed'), error: z.string().min(1).max(10_000) }).strict(),
]);

function parse<S extends z.ZodType>(schema: S, value: unknown, root: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ValidationError(zodIssues(r.error, root));
  return r.data;
}

export function registerAttentionRoutes(app: FastifyInstance, deps: { readonly attention: AttentionService }): void {
  app.get('/v1/attention', async (req) => {
    const q = parse(AttentionListQuerySchema, req.query, '');
    return { attention: await deps.attention.list(q.tenant) };
  });
  app.post('/v1/runs/:tenant/:runId/nodes/:nodeId/attention', async (req) => {
    const p = parse(AttentionParamsSchema, req.params, '');
    const b = parse(ResolveAttentionBodySchema, req.body, '');
    return deps.attention.resolve(p.tenant, p.runId, p.nodeId, b);
  });
}
