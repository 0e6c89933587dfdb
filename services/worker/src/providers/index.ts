/**
 * LLM provider adapters of the worker (ARCHITECTURE.md "worker"): the simulated provider (the
 * default when no key is configured), OpenAI-compatible endpoints, Anthropic, and a local GGUF
 * model, behind one registry. See docs/providers.md.
 */
import { DefaultProviderRegistry, type ProviderConfig, type ProviderFactory, type ProviderRegistry } from './registry.js';

export function createProviderRegistry(config: ProviderConfig = {}): ProviderRegistry {
  const factories = new Map<string, ProviderFactory>();
  return new DefaultProviderRegistry(config.simulated, factories);
}

export { abortableSleep } from './abortable-sleep.js';
export {
  DEFAULT_RETRY_AFTER_MS,
  type HttpFailure,
  mapHttpFailure,
  ProviderStreamAbortedError,
  parseRetryAfterMs,
  UnknownProviderError,
} from './errors.js';
export { defaultLatencyProfiles, type LatencyProfile, type LatencyProfiles } from './latency.js';
export {
  FALLBACK_PROVIDER_NAMES,
  type OpenAiCompatibleEndpoint,
  type ProviderConfig,
  type ProviderRegistry,
  type ResolvedProvider,
} from './registry.js';
export { SimulatedProvider, type SimulatedProviderOptions } from './simulated.js';
export { countInputTokens, countTokens } from './tokens.js';
