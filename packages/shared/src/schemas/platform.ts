/**
 * Queries and bodies of the platform API (docs/api.md: lists with cursors, the run event
 * stream, webhooks, kills with an owner and an expiry): validated where they are received, so a
 * bad value is a 400 naming the field before anything is read or stored.
 */
import { z } from 'zod';
import { SafeIdSchema } from './http.js';

const Limit = z.coerce.number().int().min(1).max(500).default(50);
/** An opaque cursor from a previous page's `nextCursor`. */
const Cursor = z.string().min(1).max(400).optional();
const Ms = z.coerce.number().int().nonnegative();

/** GET /v1/runs: newest first. */
export const RunListQuerySchema = z
  .object({
    tenant: SafeIdSchema.optional(),
    status: z.enum(['running', 'succeeded', 'failed', 'cancelled']).optional(),
    workflow: z.string().min(1).max(64).optional(),
    /** Runs created at or after this time (ms since the epoch). */
    since: Ms.optional(),
    /** Runs created before this time (ms since the epoch). */
    until: Ms.optional(),
    limit: Limit,
    cursor: Cursor,
  })
  .strict();
export type RunListQuery = z.infer<typeof RunListQuerySchema>;

/** GET /v1/classes: by class id. */
export const ClassListQuerySchema = z
  .object({
    tenant: SafeIdSchema.optional(),
    stage: z.enum(['shadow', 'canary', 'online', 'killed']).optional(),
    /** Only classes whose speculation is blocked by a kill (true) or not (false). */
    killed: z.enum(['true', 'false']).optional(),
    limit: Limit,
    cursor: Cursor,
  })
  .strict();
export type ClassListQuery = z.infer<typeof ClassListQuerySchema>;

/** GET /v1/kills: the kill entries in force (global, then tenants, then classes). */
export const KillListQuerySchema = z
  .object({
    scope: z.enum(['global', 'tenant', 'class']).optional(),
    /** Tenant kills of this tenant and class kills of its classes. */
    tenant: SafeIdSchema.optional(),
    limit: Limit,
    cursor: Cursor,
  })
  .strict();
export type KillListQuery = z.infer<typeof KillListQuerySchema>;

/** GET /v1/stats: dollars saved and wasted and seconds saved over time (M3 net value). */
export const StatsQuerySchema = z
  .object({
    tenant: SafeIdSchema.optional(),
    workflow: z.string().min(1).max(64).optional(),
    since: Ms.optional(),
    /** Width of one time bucket, seconds. */
    bucketSec: z.coerce.number().int().min(1).max(86_400).default(60),
    /** How many of the most recent runs (per tenant) are summed. */
    maxRuns: z.coerce.number().int().min(1).max(5_000).default(1_000),
  })
  .strict();
export type StatsQuery = z.infer<typeof StatsQuerySchema>;

/** PUT /v1/tenants/:tenant/webhook: where the tenant's run-end notifications go. */
export const WebhookBodySchema = z
  .object({
    url: z
      .string()
      .max(2_000)
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http or https URL'),
    /** Key of the HMAC-SHA256 signature (`Gambit-Signature`); at least 16 characters. */
    secret: z.string().min(16).max(200),
  })
  .strict();
export type WebhookBody = z.infer<typeof WebhookBodySchema>;
