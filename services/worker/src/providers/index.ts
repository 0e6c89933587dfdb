/**
 * LLM provider adapters of the worker (ARCHITECTURE.md "worker"): the simulated provider (the
 * stand-in for an unconfigured hosted name only when the operator opts in), OpenAI-compatible endpoints, Anthropic, and a local GGUF
 * model, behind one registry. See docs/providers.md.
 */
import { AnthropicProvider } from './anthropic.js';
import { registryOf } from './load.js';
import { LocalGgufProvider } from './local-gguf.js';
import { OpenAiCompatibleProvider } from './openai.js';
import type { ProviderConfig, ProviderRegistry } from './registry.js';

/**
 * Builds the registry from configuration. Hosted providers are created on first use. Names
 * `openai`, `anthropic` and `local` with nothing configured fail with ProviderNotConfiguredError
 * unless `simulatedFallback` is set (then the simulated provider stands in, flagged); see
 * registry.ts. The worker uses `loadProviderRegistry` (load.ts), which imports only the
 * adapters the configuration names.
 */
export function createProviderRegistry(config: ProviderConfig = {}): ProviderRegistry {
  return registryOf(config, { OpenAiCompatibleProvider, AnthropicProvider, LocalGgufProvider });
}

export { loadProviderRegistry } from './load.js';
export { abortableSleep } from './abortable-sleep.js';
export { AnthropicProvider, type AnthropicOptions } from './anthropic.js';
export {
  DEFAULT_RETRY_AFTER_MS,
  type HttpFailure,
  mapHttpFailure,
  ProviderNotConfiguredError,
  ProviderStreamAbortedError,
  parseRetryAfterMs,
  UnknownProviderError,
} from './errors.js';
export { defaultLatencyProfiles, type LatencyProfile, type LatencyProfiles } from './latency.js';
export { LocalGgufProvider, type LocalGgufOptions } from './local-gguf.js';
export { OpenAiCompatibleProvider, type OpenAiCompatibleOptions } from './openai.js';
export {
  FALLBACK_PROVIDER_ENV,
  FALLBACK_PROVIDER_NAMES,
  type OpenAiCompatibleEndpoint,
  type ProviderConfig,
  type ProviderRegistry,
  type ResolvedProvider,
  type ServedBy,
} from './registry.js';
export { SimulatedProvider, type SimulatedProviderOptions } from './simulated.js';
export { countInputTokens, countTokens } from './tokens.js';
