/**
 * What the route modules need (services/scheduler/src/http/routes/*.ts). Each module exports
 * `register<Name>Routes(app, deps)`; `buildServer` (server.ts) installs the error handler and
 * the auth hook first, then registers every module.
 */
import type { KillBodySchema, Logger, PriceTable } from '@gambit/shared';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import type { AttentionService } from '../attention.js';
import type { LimitStore, SpendLedger } from '../limits.js';
import type { RunService } from '../runs.js';
import type { TenantStore } from '../tenants.js';
import type { WorkflowRegistry } from '../workflows.js';
import type { KeyStore } from './auth.js';
import type { Queue } from 'bullmq';
import type { WebhookService } from '../webhooks.js';
import type { PlatformDeps } from './routes/platform.js';

export interface Operator {
  kill(body: z.infer<typeof KillBodySchema>): Promise<unknown>;
  revive(body: z.infer<typeof KillBodySchema>): Promise<unknown>;
  classInfo(classId: string): Promise<unknown>;
  health(): Promise<Record<string, unknown>>;
}

/** A readiness probe: status 200 or 503 and the body to send (see observe.ts). */
export type Readiness = () => Promise<{ status: number; body: unknown }>;

export interface HttpDeps {
  readonly runs: RunService;
  readonly tenants: TenantStore;
  readonly workflows: WorkflowRegistry;
  readonly operator: Operator;
  readonly keys: KeyStore;
  /** Issue 10 items 4-5: per-tenant caps and admission limits. */
  readonly limits: LimitStore;
  /** Issue 10 item 3: the per-period spend ledger (GET /v1/tenants/:tenant/spend). */
  readonly spend: SpendLedger;
  /** Issue 11 D2: nodes waiting for an operator; absent = the attention routes are not served. */
  readonly attention?: AttentionService;
  readonly priceTable: PriceTable;
  readonly knownTools?: ReadonlySet<string>;
  readonly bodyLimitBytes: number;
  /** Issue 11 D3: how long a submit may take before its write is abandoned (API_DEADLINE_MS). */
  readonly apiDeadlineMs: number;
  readonly log: Logger;
  /** GET /readyz; absent = the route is not served by this server. */
  readonly readiness?: Readiness;
  /** Lists, stats and run events (routes/platform.ts); absent = not served. */
  readonly platform?: PlatformDeps;
  /** The run-end webhook (routes/webhooks.ts); absent = not served. */
  readonly webhooks?: WebhookService;
  /** The console and bull-board (routes/console.ts): the queues bull-board shows; absent = not served. */
  readonly consoleQueues?: readonly Queue[];
}

/** The fastify instance the route modules get: zod schemas as the type provider. */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;
