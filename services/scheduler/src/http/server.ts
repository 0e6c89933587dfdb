/**
 * The scheduler's HTTP API (docs/api.md) on fastify. Routes live in modules under routes/, each
 * `register<Name>Routes(app, deps)`; bodies, parameters and queries are validated by their zod
 * schemas (packages/shared/src/schemas/http.ts) through fastify-type-provider-zod, so bad input
 * is a 4xx naming the field before anything is stored. Every error, fastify's own router and
 * parser errors included (issue 11 D4), has the one shape of errors.ts. Every route but health
 * needs an API key (auth.ts, issue 10 item 1).
 */
import Fastify, { type FastifyReply } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { installAuth } from './auth.js';
import type { App, HttpDeps } from './deps.js';
import { toHttpError } from './errors.js';
import { registerAttentionRoutes } from './routes/attention.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerLimitRoutes } from './routes/limits.js';
import { registerOperatorRoutes } from './routes/operator.js';
import { registerPlatformRoutes } from './routes/platform.js';
import { registerPriorRoutes } from './routes/priors.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerDocRoutes } from './routes/docs.js';
import { registerWebhookRoutes } from './routes/webhooks.js';
import { registerRunRoutes } from './routes/runs.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerWorkflowRoutes } from './routes/workflows.js';

export type { App, HttpDeps, Operator, Readiness } from './deps.js';
export { toHttpError } from './errors.js';

/** Longest accepted path parameter; longer ones reach the schema and get a 400 naming the field. */
const MAX_PARAM_LENGTH = 1_000;

export function buildServer(deps: HttpDeps): App {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimitBytes,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // D4: a URL fastify's router cannot decode answers in the one error shape.
    frameworkErrors: (err, _req, reply) => {
      const { status, body, headers } = toHttpError(err);
      void (reply as unknown as FastifyReply).status(status).headers(headers).send(body);
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.setErrorHandler((err, req, reply) => {
    const { status, body, headers } = toHttpError(err);
    if (status >= 500) deps.log.error({ err: String(err), stack: (err as Error).stack, url: req.url }, 'request failed');
    void reply.status(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  // OpenAPI (GET /openapi.json): every route registered below is described from its zod schemas.
  void app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Gambit scheduler API', version: '1', description: 'Cost-aware speculative execution of LLM-agent workflows (docs/api.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a tenant key (gmb_...) or the operator key' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  installAuth(app, deps.keys);
  // Routes load after the OpenAPI plugin, so its onRoute hook sees (and describes) every one.
  void app.register(async (scoped) => {
    const r = scoped as unknown as App;
    registerHealthRoutes(r, deps);
    registerRunRoutes(r, deps);
    registerTenantRoutes(r, deps);
    registerPriorRoutes(r, deps);
    registerWorkflowRoutes(r, deps);
    registerOperatorRoutes(r, deps);
    registerKeyRoutes(r, deps);
    registerLimitRoutes(r, deps);
    registerAttentionRoutes(r, deps);
    if (deps.platform !== undefined) registerPlatformRoutes(r, deps.platform);
    if (deps.webhooks !== undefined) registerWebhookRoutes(r, deps.webhooks);
    registerDocRoutes(r, app);
    if (deps.consoleQueues !== undefined) registerConsoleRoutes(r, { keys: deps.keys, queues: deps.consoleQueues });
  });
  return app;
}
