/**
 * Machine-readable descriptions of the API (docs/api.md, OpenAPI): `/openapi.json`, the OpenAPI
 * 3 document @fastify/swagger builds from every route's zod schemas, and
 * `/v1/schemas/workflow.json`, the JSON Schema of a workflow definition (the input side of
 * WorkflowSchema). Both are public: they describe the API, not any tenant's data.
 */
import { WorkflowSchema } from '@gambit/shared';
import { z } from 'zod';
import type { App } from '../deps.js';

/** The JSON Schema (draft 2020-12) of what POST /v1/runs and /v1/workflows accept as `workflow`. */
export function workflowJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(WorkflowSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://gambit.dev/schemas/workflow.json',
    title: 'Gambit workflow definition',
  };
}

/** `root` is the instance @fastify/swagger was registered on (it holds the document). */
export function registerDocRoutes(app: App, root: App): void {
  const workflow = workflowJsonSchema();
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => root.swagger());
  app.get('/v1/schemas/workflow.json', { config: { public: true }, schema: { hide: true } }, async () => workflow);
}
