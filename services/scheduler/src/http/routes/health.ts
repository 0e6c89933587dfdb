/** Liveness (`/healthz`, no Redis round trip) and readiness (`/readyz`); no key needed. */
import type { App, HttpDeps } from '../deps.js';

export function registerHealthRoutes(app: App, deps: HttpDeps): void {
  app.get('/healthz', { config: { public: true } }, async () => deps.operator.health());
  const readiness = deps.readiness;
  if (readiness !== undefined)
    app.get('/readyz', { config: { public: true } }, async (_req, reply) => {
      const a = await readiness();
      return reply.status(a.status).send(a.body);
    });
}
