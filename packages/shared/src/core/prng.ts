/**
 * A seeded PRNG (mulberry32) for simulations in tests, benchmarks and offline replay. The core
 * never draws random numbers itself (STYLE.md 2); callers pass a generator built from a seed.
 */

/** Returns a generator of uniform floats in [0, 1) determined entirely by `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
