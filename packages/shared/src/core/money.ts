/**
 * Money units (METHOD.md M2). Ledgers and Redis hold integer nano-dollars (1e-9 USD); float
 * dollars exist only in decision arithmetic and display.
 */

export const NANO_PER_USD = 1_000_000_000;

/** Dollars to integer nano-dollars, rounded to the nearest nano-dollar. */
export function usdToNano(usd: number): number {
  if (!Number.isFinite(usd)) throw new RangeError(`usdToNano: not a finite amount: ${usd}`);
  return Math.round(usd * NANO_PER_USD);
}

/** Integer nano-dollars to float dollars (for decision arithmetic and display). */
export function nanoToUsd(nano: number): number {
  return nano / NANO_PER_USD;
}
