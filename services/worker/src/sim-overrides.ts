/**
 * Drift overrides for the simulated provider (M9 drift tests): the operator hash
 * `controlKeys(ks).sim` maps `${tenant}/${workflow}/${nodeId}` to a JSON list of outcomes that
 * replaces the node's `simulate.outcomes`, so a test can change hit rates in the middle of a
 * run. Read before each simulated call; an invalid entry fails the attempt loudly (non-retryable,
 * naming the field), never silently falls back.
 */
import { SimulationSchema, ValidationError, zodIssues } from '@gambit/shared';
import { controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import type { z } from 'zod';

const OutcomesSchema = SimulationSchema.shape.outcomes.unwrap();
export type SimOutcomes = z.infer<typeof OutcomesSchema>;

export function simOverrideField(tenant: string, workflow: string, nodeId: string): string {
  return `${tenant}/${workflow}/${nodeId}`;
}

/** The override outcomes for this node, or undefined when none is set. */
export async function readSimOverride(
  redis: RedisLike,
  ks: KeySpace,
  tenant: string,
  workflow: string,
  nodeId: string,
): Promise<SimOutcomes | undefined> {
  const field = simOverrideField(tenant, workflow, nodeId);
  const raw = await redis.hget(controlKeys(ks).sim, field);
  if (raw === null) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ValidationError([{ path: `sim["${field}"]`, message: 'must be a JSON list of {value, weight}' }]);
  }
  const parsed = OutcomesSchema.safeParse(json);
  if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, `sim["${field}"]`));
  return parsed.data;
}
