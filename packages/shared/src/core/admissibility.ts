/**
 * M6 (admissibility): which operations may run speculatively. `none`, `idempotent` and `staged`
 * may; `irreversible` never (the rule is not even evaluated). An operation that `discloses`
 * the guessed intent to an outside service is admissible only where the tenant allows it.
 */
import type { Effects } from './types.js';

export type Admissibility = { readonly ok: true } | { readonly ok: false; readonly reason: 'irreversible' | 'disclosure_not_allowed' };

export function admissibility(
  op: { readonly effects: Effects; readonly discloses: boolean },
  policy: { readonly allowDisclosure: boolean },
): Admissibility {
  if (op.effects === 'irreversible') return { ok: false, reason: 'irreversible' };
  if (op.discloses && !policy.allowDisclosure) return { ok: false, reason: 'disclosure_not_allowed' };
  return { ok: true };
}
