/**
 * M3 (the dial): α ∈ [0, 1] is the operator's latency-versus-cost preference (1 = latency
 * first); λ ≥ 0 is the deployment's dollar value of a second of latency (configuration).
 */
import { ValidationError } from '../errors.js';
import type { Dial } from './types.js';

/** Whether α ∈ [0, 1] and λ is finite ≥ 0 (validateDial throws otherwise); allocates nothing. */
export function isValidDial(dial: Dial): boolean {
  const { alpha, lambdaUsdPerSec } = dial;
  return (
    typeof alpha === 'number' &&
    Number.isFinite(alpha) &&
    alpha >= 0 &&
    alpha <= 1 &&
    typeof lambdaUsdPerSec === 'number' &&
    Number.isFinite(lambdaUsdPerSec) &&
    lambdaUsdPerSec >= 0
  );
}

/** Validates a dial; throws ValidationError naming `alpha` or `lambdaUsdPerSec`. */
export function validateDial(dial: Dial, root = ''): Dial {
  const issues: { path: string; message: string }[] = [];
  const at = (f: string) => (root === '' ? f : `${root}.${f}`);
  if (typeof dial.alpha !== 'number' || !Number.isFinite(dial.alpha) || dial.alpha < 0 || dial.alpha > 1)
    issues.push({ path: at('alpha'), message: `α must be a number in [0, 1], got ${String(dial.alpha)}` });
  if (typeof dial.lambdaUsdPerSec !== 'number' || !Number.isFinite(dial.lambdaUsdPerSec) || dial.lambdaUsdPerSec < 0)
    issues.push({ path: at('lambdaUsdPerSec'), message: `λ must be a finite number ≥ 0, got ${String(dial.lambdaUsdPerSec)}` });
  if (issues.length > 0) throw new ValidationError(issues);
  return { alpha: dial.alpha, lambdaUsdPerSec: dial.lambdaUsdPerSec };
}

/** M3: the dial in force for a run: the run's override of either field, else the tenant's default. */
export function resolveDial(tenantDefault: Dial, runOverride?: Partial<Dial>): Dial {
  return validateDial({
    alpha: runOverride?.alpha ?? tenantDefault.alpha,
    lambdaUsdPerSec: runOverride?.lambdaUsdPerSec ?? tenantDefault.lambdaUsdPerSec,
  });
}
