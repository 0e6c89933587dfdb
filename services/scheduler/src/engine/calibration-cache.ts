import { resolveCalibration } from '@gambit/shared';

/**
 * The tenant's resolved calibration, once per overrides object (issue 13 item 1): the tenant
 * store hands out the same object while its configuration is cached, and resolving (a zod parse)
 * on every decision was a visible share of the scheduler's CPU. Same result as calling
 * resolveCalibration each time (a pure function of the overrides; the result is not edited).
 */
const resolvedCalibrations = new WeakMap<object, ReturnType<typeof resolveCalibration>>();
let defaultCalibration: ReturnType<typeof resolveCalibration> | undefined;

export function calibrationOf(overrides: Parameters<typeof resolveCalibration>[0]): ReturnType<typeof resolveCalibration> {
  if (overrides === undefined) {
    defaultCalibration ??= resolveCalibration(undefined);
    return defaultCalibration;
  }
  let cal = resolvedCalibrations.get(overrides);
  if (cal === undefined) {
    cal = resolveCalibration(overrides);
    resolvedCalibrations.set(overrides, cal);
  }
  return cal;
}
