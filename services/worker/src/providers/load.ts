/**
 * Builds the worker's provider registry loading only the adapters the configuration names (issue
 * 11 item 4): the OpenAI and Anthropic SDKs and node-llama-cpp are imported only when an
 * endpoint, a key or a model path is configured for them. A replacement worker started after a
 * crash is ready sooner and spends less CPU starting (the SDKs are most of its module graph);
 * `createProviderRegistry` (index.ts) builds the same registry with every adapter loaded.
 */
import type { AnthropicProvider } from './anthropic.js';
import type { LocalGgufProvider } from './local-gguf.js';
import type { OpenAiCompatibleProvider } from './openai.js';
import { DefaultProviderRegistry, type ProviderConfig, type ProviderFactory, type ProviderRegistry } from './registry.js';

export interface ProviderClasses {
  readonly OpenAiCompatibleProvider?: typeof OpenAiCompatibleProvider;
  readonly AnthropicProvider?: typeof AnthropicProvider;
  readonly LocalGgufProvider?: typeof LocalGgufProvider;
}

/** The adapters `config` needs (only those are imported). */
export async function loadProviderClasses(config: ProviderConfig): Promise<ProviderClasses> {
  const [openai, anthropic, local] = await Promise.all([
    Object.keys(config.openaiCompatible ?? {}).length > 0 ? import('./openai.js') : undefined,
    config.anthropic?.apiKey ? import('./anthropic.js') : undefined,
    config.local?.modelPath ? import('./local-gguf.js') : undefined,
  ]);
  return {
    ...(openai === undefined ? {} : { OpenAiCompatibleProvider: openai.OpenAiCompatibleProvider }),
    ...(anthropic === undefined ? {} : { AnthropicProvider: anthropic.AnthropicProvider }),
    ...(local === undefined ? {} : { LocalGgufProvider: local.LocalGgufProvider }),
  };
}

/** The registry of `config` from the given adapter classes; each configured one must be given. */
export function registryOf(config: ProviderConfig, classes: ProviderClasses): ProviderRegistry {
  const need = <T>(c: T | undefined, what: string): T => {
    if (c === undefined) throw new Error(`provider registry: ${what} is configured but its adapter was not loaded`);
    return c;
  };
  const factories = new Map<string, ProviderFactory>();
  for (const [name, ep] of Object.entries(config.openaiCompatible ?? {})) {
    const C = need(classes.OpenAiCompatibleProvider, `OpenAI-compatible endpoint "${name}"`);
    factories.set(name, () => new C({ name, ...ep }));
  }
  const anthropic = config.anthropic;
  if (anthropic?.apiKey) {
    const C = need(classes.AnthropicProvider, 'anthropic');
    factories.set('anthropic', () => new C({ name: 'anthropic', ...anthropic }));
  }
  const local = config.local;
  if (local?.modelPath) {
    const C = need(classes.LocalGgufProvider, 'local');
    factories.set('local', () => new C({ name: 'local', ...local }));
  }
  return new DefaultProviderRegistry(config.simulated, factories, { simulatedFallback: config.simulatedFallback === true });
}

/** The registry of `config`, importing only the adapters it configures. */
export async function loadProviderRegistry(config: ProviderConfig = {}): Promise<ProviderRegistry> {
  return registryOf(config, await loadProviderClasses(config));
}
