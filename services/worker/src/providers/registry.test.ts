/**
 * Provider registry: the simulated provider is always present; `openai`, `anthropic` and `local`
 * with nothing configured fail with a clear error unless the operator opted in to the simulated
 * fallback (issue 10 item 8), and then spans and metrics name `simulated`.
 */
import { UnknownModelError } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { ProviderNotConfiguredError, UnknownProviderError } from './errors.js';
import { createProviderRegistry } from './index.js';
import { SimulatedProvider } from './simulated.js';

describe('createProviderRegistry', () => {
  it('always has the simulated provider', async () => {
    const reg = createProviderRegistry({ simulated: { timeScale: 0 } });
    const r = reg.resolve('simulated');
    expect(r.provider).toBeInstanceOf(SimulatedProvider);
    expect(r.simulated).toBe(false);
    expect(reg.servedBy('simulated')).toEqual({ provider: 'simulated' });
    await reg.close();
  });

  it('openai, anthropic and local with nothing configured and no opt-in fail naming the provider and the variable', async () => {
    const reg = createProviderRegistry({});
    const want = { openai: 'OPENAI_API_KEY', anthropic: 'ANTHROPIC_API_KEY', local: 'GAMBIT_LOCAL_MODEL_PATH' };
    for (const [name, envVar] of Object.entries(want)) {
      let caught: unknown;
      try {
        reg.resolve(name);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ProviderNotConfiguredError);
      const err = caught as ProviderNotConfiguredError;
      expect(err.code).toBe('PROVIDER_NOT_CONFIGURED');
      expect(err.retry).toBe('non-retryable');
      expect(err.message).toContain(`provider "${name}" is not configured`);
      expect(err.message).toContain(envVar);
      expect(err.message).toContain('GAMBIT_SIMULATED_FALLBACK=1');
      expect(reg.servedBy(name)).toEqual({ provider: name });
    }
    expect(reg.simulatedStandIns()).toEqual([]);
    await reg.close();
  });

  it('with the operator’s opt-in they run on the simulated provider, flagged, and are served by `simulated`', async () => {
    const reg = createProviderRegistry({ simulatedFallback: true });
    for (const name of ['openai', 'anthropic', 'local']) {
      const r = reg.resolve(name);
      expect(r.simulated).toBe(true);
      expect(r.provider).toBe(reg.resolve('simulated').provider);
      expect(reg.servedBy(name)).toEqual({ provider: 'simulated', simulates: name });
    }
    expect(reg.simulatedStandIns()).toEqual(['openai', 'anthropic', 'local']);
    await reg.close();
  });

  it('a configured provider is served by itself even with the opt-in', async () => {
    const reg = createProviderRegistry({ simulatedFallback: true, openaiCompatible: { openai: { baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } } });
    expect(reg.resolve('openai').simulated).toBe(false);
    expect(reg.servedBy('openai')).toEqual({ provider: 'openai' });
    expect(reg.simulatedStandIns()).toEqual(['anthropic', 'local']);
    await reg.close();
  });

  it('an unknown provider name throws UnknownProviderError (code UNKNOWN_MODEL, non-retryable), opt-in or not', async () => {
    for (const simulatedFallback of [false, true]) {
      const reg = createProviderRegistry({ simulatedFallback });
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
    }
  });

  it('close is idempotent', async () => {
    const reg = createProviderRegistry({});
    await reg.close();
    await reg.close();
  });
});
