/** Provider registry: the simulated provider is always present and stands in for unconfigured names. */
import { UnknownModelError } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { UnknownProviderError } from './errors.js';
import { createProviderRegistry } from './index.js';
import { SimulatedProvider } from './simulated.js';

describe('createProviderRegistry', () => {
  it('always has the simulated provider', async () => {
    const reg = createProviderRegistry({ simulated: { timeScale: 0 } });
    const r = reg.resolve('simulated');
    expect(r.provider).toBeInstanceOf(SimulatedProvider);
    expect(r.simulated).toBe(false);
    await reg.close();
  });

  it('openai, anthropic and local with no key configured resolve to the simulated provider, flagged', async () => {
    const reg = createProviderRegistry({});
    for (const name of ['openai', 'anthropic', 'local']) {
      const r = reg.resolve(name);
      expect(r.simulated).toBe(true);
      expect(r.provider).toBe(reg.get('simulated'));
    }
    await reg.close();
  });

  it('an unknown provider name throws UnknownProviderError (code UNKNOWN_MODEL, non-retryable)', async () => {
    const reg = createProviderRegistry({});
    let caught: unknown;
    try {
      reg.get('no-such-provider');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UnknownProviderError);
    expect(caught).toBeInstanceOf(UnknownModelError);
    expect((caught as UnknownProviderError).code).toBe('UNKNOWN_MODEL');
    expect((caught as UnknownProviderError).retry).toBe('non-retryable');
    expect((caught as UnknownProviderError).providerName).toBe('no-such-provider');
    await reg.close();
  });

  it('close is idempotent', async () => {
    const reg = createProviderRegistry({});
    await reg.close();
    await reg.close();
  });
});
