/**
 * Canary sampling (M9.3): whether a decision falls in a canary class's fraction, decided by a
 * hash of the decision id so that every scheduler process decides the same way. Pure.
 */

/** FNV-1a 32-bit of the UTF-16 code units, finished with murmur3's fmix32 for avalanche. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** True when `decisionId` is in the canary `fraction` (0 = never, 1 = always). */
export function canarySampled(decisionId: string, fraction: number): boolean {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  return hash32(decisionId) / 4294967296 < fraction;
}
