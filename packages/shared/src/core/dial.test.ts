import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { admissibility } from './admissibility.js';
import { resolveDial, validateDial } from './dial.js';

function issuePaths(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues.map((i) => i.path);
  }
  return [];
}

describe('M3 the dial', () => {
  it('accepts α ∈ [0, 1] and λ ≥ 0, and names the bad field otherwise', () => {
    expect(validateDial({ alpha: 0, lambdaUsdPerSec: 0 })).toEqual({ alpha: 0, lambdaUsdPerSec: 0 });
    expect(validateDial({ alpha: 1, lambdaUsdPerSec: 5 })).toEqual({ alpha: 1, lambdaUsdPerSec: 5 });
    expect(issuePaths(() => validateDial({ alpha: -0.1, lambdaUsdPerSec: 1 }))).toEqual(['alpha']);
    expect(issuePaths(() => validateDial({ alpha: 0.5, lambdaUsdPerSec: -1 }))).toEqual(['lambdaUsdPerSec']);
    expect(issuePaths(() => validateDial({ alpha: Number.NaN, lambdaUsdPerSec: Number.POSITIVE_INFINITY }))).toEqual(['alpha', 'lambdaUsdPerSec']);
  });

  it('a run override of either field wins over the tenant default', () => {
    const tenant = { alpha: 0.5, lambdaUsdPerSec: 0.01 };
    expect(resolveDial(tenant)).toEqual(tenant);
    expect(resolveDial(tenant, { alpha: 0.9 })).toEqual({ alpha: 0.9, lambdaUsdPerSec: 0.01 });
    expect(resolveDial(tenant, { lambdaUsdPerSec: 2 })).toEqual({ alpha: 0.5, lambdaUsdPerSec: 2 });
    expect(issuePaths(() => resolveDial(tenant, { alpha: 2 }))).toEqual(['alpha']);
  });
});

describe('M6 admissibility', () => {
  it('irreversible never; disclosing only where allowed; none, idempotent and staged otherwise', () => {
    for (const effects of ['none', 'idempotent', 'staged'] as const) {
      expect(admissibility({ effects, discloses: false }, { allowDisclosure: false })).toEqual({ ok: true });
      expect(admissibility({ effects, discloses: true }, { allowDisclosure: true })).toEqual({ ok: true });
      expect(admissibility({ effects, discloses: true }, { allowDisclosure: false })).toEqual({ ok: false, reason: 'disclosure_not_allowed' });
    }
    expect(admissibility({ effects: 'irreversible', discloses: false }, { allowDisclosure: true })).toEqual({ ok: false, reason: 'irreversible' });
  });
});
