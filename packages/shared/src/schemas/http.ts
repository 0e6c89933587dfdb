/**
 * HTTP bodies and parameters of the scheduler's API (docs/api.md), validated where they are
 * received. Ids that become parts of Redis keys (tenant, run, workflow names) are restricted to
 * key-safe characters here, so a bad one is a 400 naming the field before anything is stored.
 */
import { z } from 'zod';
import { STAGES } from '../core/types.js';
import { CalibrationOverridesSchema } from '../calibration/config.js';

/** Tenant and run ids: letters, digits, `_`, `-`, `.`; 1-64 characters (key-safe, job-id-safe). */
export const SafeIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be 1-64 letters, digits, _ - or . (starting with a letter or digit)');

export const Alpha = z.number().min(0).max(1);
export const Lambda = z.number().nonnegative().max(1_000_000);

export const PosteriorModeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('mean') }).strict(),
  z.object({ kind: z.literal('lower_bound'), quantile: z.number().gt(0).lt(1) }).strict(),
]);

/** POST /v1/runs. `tenant` comes from the API key; an operator key must name it (issue 10 item 1). */
export const SubmitRunBodySchema = z
  .object({
    tenant: SafeIdSchema.optional(),
    /** A workflow definition (validated with parseWorkflow), or the name of a registered one. */
    workflow: z.union([z.string().min(1).max(64), z.record(z.string(), z.unknown())]),
    inputs: z.record(z.string(), z.unknown()).default({}),
    alpha: Alpha.optional(),
    lambdaUsdPerSec: Lambda.optional(),
    /** false: never speculate in this run (the non-speculative schedule). */
    speculation: z.boolean().default(true),
    /** Optional client-chosen run id (idempotent submit); generated when absent. */
    runId: SafeIdSchema.optional(),
  })
  .strict();
export type SubmitRunBody = z.infer<typeof SubmitRunBodySchema>;

export const RunParamsSchema = z.object({ tenant: SafeIdSchema, runId: SafeIdSchema }).strict();
export const TenantParamsSchema = z.object({ tenant: SafeIdSchema }).strict();

/** PUT /v1/runs/:tenant/:runId/dial (M3: takes effect on the next decision). */
export const DialBodySchema = z.object({ alpha: Alpha }).strict();

/** POST /v1/runs/:tenant/:runId/cancel */
export const CancelBodySchema = z.object({ reason: z.string().max(500).optional() }).strict();

/** PUT /v1/tenants/:tenant/config: every field optional; given fields replace stored ones. */
export const TenantConfigBodySchema = z
  .object({
    alpha: Alpha.optional(),
    lambdaUsdPerSec: Lambda.optional(),
    /** Cap on the tenant's speculative waste plus open reservations (M10), dollars. */
    budgetUsd: z.number().nonnegative().max(1_000_000).optional(),
    posteriorMode: PosteriorModeSchema.optional(),
    /** M6: whether operations marked `discloses` may run speculatively. */
    allowDisclosure: z.boolean().optional(),
    /** M9: stage of this tenant's new edge classes. */
    initialStage: z.enum(STAGES).exclude(['replay', 'killed']).optional(),
    calibration: CalibrationOverridesSchema.optional(),
    /**
     * Issue 13 item 3: keep the inputs, node outputs, guesses and released effects in an ended
     * run's compact record (default true; false keeps only states, timings, usage, money,
     * decisions and outcomes once the run has ended and settled).
     */
    keepOutputs: z.boolean().optional(),
    /** Issue 10 item 9: how long an ended run's record is kept, seconds; at most the `maxRetentionSec` limit. */
    retentionSec: z.number().int().positive().max(10 * 365 * 24 * 3600).optional(),
  })
  .strict();
export type TenantConfigBody = z.infer<typeof TenantConfigBodySchema>;

/** POST /v1/workflows */
export const RegisterWorkflowBodySchema = z
  .object({
    /** Taken from the API key; an operator key must name it. */
    tenant: SafeIdSchema.optional(),
    /** The definition; its `name` is the registered name. */
    workflow: z.record(z.string(), z.unknown()),
  })
  .strict();

/** GET /v1/workflows: by name, paged (docs/api.md, Lists). */
export const WorkflowListQuerySchema = z
  .object({
    tenant: SafeIdSchema.optional(),
    /** Only names starting with this. */
    prefix: z.string().min(1).max(64).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(500),
    /** The `nextCursor` of the previous page. */
    cursor: z.string().min(1).max(400).optional(),
  })
  .strict();

/** API key ids (issue 10 item 1): `k` and 16 hex digits. */
export const KeyIdSchema = z.string().regex(/^k[0-9a-f]{16}$/, 'must be "k" and 16 hex digits');

/** POST /v1/admin/tenants/:tenant/keys (operator). */
export const CreateKeyBodySchema = z.object({ label: z.string().max(100).optional() }).strict();

export const KeyParamsSchema = z.object({ tenant: SafeIdSchema, keyId: KeyIdSchema }).strict();

/**
 * POST /v1/kill and /v1/revive (operator, M9). Exactly one scope. A kill holds until revived
 * unless `expiresInSec` is given; `owner` names who set it (recorded with the kill).
 */
export const KillBodySchema = z
  .object({
    scope: z.enum(['global', 'tenant', 'class']),
    tenant: SafeIdSchema.optional(),
    classId: z.string().min(1).max(300).optional(),
    reason: z.string().max(500).default('operator'),
    owner: z.string().min(1).max(100).optional(),
    /** Kill only: the kill lapses after this many seconds (at most 30 days). */
    expiresInSec: z.number().int().positive().max(30 * 86_400).optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.scope === 'tenant' && b.tenant === undefined) ctx.addIssue({ code: 'custom', path: ['tenant'], message: 'required for scope "tenant"' });
    if (b.scope === 'class' && b.classId === undefined) ctx.addIssue({ code: 'custom', path: ['classId'], message: 'required for scope "class"' });
  });
export type KillBody = z.infer<typeof KillBodySchema>;

/**
 * The error body of every 4xx/5xx answer (docs/api.md): `field` names the offending field when
 * there is one; `issues` lists every field of a validation error.
 */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly field?: string;
    readonly issues?: ReadonlyArray<{ path: string; message: string }>;
  };
}
