/** Operator routes (docs/api.md, Calibration and kill-switch, M9): operator key only. */
import { KillBodySchema } from '@gambit/shared';
import { z } from 'zod';
import { requireOperator } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

const ClassParamsSchema = z.object({ classId: z.string().min(1).max(300) }).strict();

export function registerOperatorRoutes(app: App, deps: HttpDeps): void {
  app.get('/v1/classes/:classId', { schema: { params: ClassParamsSchema } }, async (req) => {
    requireOperator(req);
    return deps.operator.classInfo(req.params.classId);
  });
  app.post('/v1/kill', { schema: { body: KillBodySchema } }, async (req) => {
    requireOperator(req);
    return deps.operator.kill(req.body);
  });
  app.post('/v1/revive', { schema: { body: KillBodySchema } }, async (req) => {
    requireOperator(req);
    return deps.operator.revive(req.body);
  });
}
