/**
 * M5 priors and predictor settings per tenant and class, changeable at run time (issue 9 item 7):
 * the body of PUT /v1/tenants/:tenant/priors and the file `gambit replay --fit` writes.
 * `types` sets the prior of every edge class of a dependency type; `classes` sets one edge class
 * (`<tenant>/<workflow>/<from>-><to>`) and wins over its type. Each may also set how P is read off
 * the posterior (`posteriorMode`, else the tenant's).
 */
import { z } from 'zod';
import { DEPENDENCY_TYPES } from '../core/types.js';
import { PosteriorModeSchema } from './http.js';

export const PriorSettingSchema = z
  .object({
    a: z.number().positive().max(1e6),
    b: z.number().positive().max(1e6),
    posteriorMode: PosteriorModeSchema.optional(),
  })
  .strict();
export type PriorSetting = z.infer<typeof PriorSettingSchema>;

export const TenantPriorsSchema = z
  .object({
    types: z.partialRecord(z.enum(DEPENDENCY_TYPES), PriorSettingSchema).optional(),
    classes: z.record(z.string().min(1).max(300), PriorSettingSchema).optional(),
  })
  .strict();
export type TenantPriors = z.infer<typeof TenantPriorsSchema>;
