/** M9.3 canary sampling: deterministic by decision id, and within sampling error of the fraction. */
import { describe, expect, it } from 'vitest';
import { canarySampled } from './canary.js';

describe('M9.3 canarySampled', () => {
  it('decides the same way every time for the same decision id', () => {
    for (let i = 0; i < 100; i++) expect(canarySampled(`run-7:node-${i}`, 0.3)).toBe(canarySampled(`run-7:node-${i}`, 0.3));
  });
  it('samples its fraction within 4 standard errors over 20 000 sequential ids', () => {
    const n = 20_000;
    for (const f of [0.05, 0.2, 0.5]) {
      let k = 0;
      for (let i = 0; i < n; i++) if (canarySampled(`d${i}`, f)) k++;
      expect(Math.abs(k / n - f)).toBeLessThan(4 * Math.sqrt((f * (1 - f)) / n));
    }
  });
  it('is monotone in the fraction and handles 0 and 1', () => {
    for (let i = 0; i < 1000; i++) {
      const id = `x${i}`;
      if (canarySampled(id, 0.1)) expect(canarySampled(id, 0.4)).toBe(true);
      expect(canarySampled(id, 0)).toBe(false);
      expect(canarySampled(id, 1)).toBe(true);
    }
  });
});
