/**
 * M5 priors per tenant and class (issue 9 item 7): which prior and posterior mode an edge class
 * uses, from the tenant's settings (schemas/priors.ts) or the dependency type's default; and the
 * posterior under a prior changed at run time: the new prior plus the evidence the class has
 * gathered (its posterior minus the prior it started from), so a change takes effect on the next
 * decision without losing what was learned.
 */
import type { TenantPriors } from '../schemas/priors.js';
import { priorFor } from './posterior.js';
import type { BetaParams, DependencyType, PosteriorMode } from './types.js';

export interface ResolvedPrior {
  readonly prior: BetaParams;
  /** Set when the tenant chose a posterior mode for this class or type. */
  readonly mode?: PosteriorMode;
}

/** M5: the class's prior: the tenant's class setting, else its type setting, else the default. */
export function resolvePrior(priors: TenantPriors | undefined, classId: string, type: DependencyType, k?: number): ResolvedPrior {
  const set = priors?.classes?.[classId] ?? priors?.types?.[type];
  if (set === undefined) return { prior: priorFor(type, k) };
  return { prior: { a: set.a, b: set.b }, ...(set.posteriorMode === undefined ? {} : { mode: set.posteriorMode }) };
}

/** The class state fields the posterior under a new prior needs (control/class-state.ts). */
export interface LearnedBeta {
  readonly a: number;
  readonly b: number;
  /** The prior the class started from. */
  readonly a0: number;
  readonly b0: number;
}

/** M5: Beta(a_prior + (a − a0), b_prior + (b − b0)): the evidence, under the prior now in force. */
export function posteriorUnder(prior: BetaParams, learned: LearnedBeta | undefined): BetaParams {
  if (learned === undefined) return prior;
  return { a: prior.a + Math.max(0, learned.a - learned.a0), b: prior.b + Math.max(0, learned.b - learned.b0) };
}
