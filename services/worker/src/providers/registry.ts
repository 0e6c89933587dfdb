/**
 * The provider registry: maps a workflow node's provider name to an `LlmProvider`.
 *
 * Names:
 * - `simulated`: always present (SimulatedProvider).
 * - each configured OpenAI-compatible endpoint, by its configured name (`openai`, `vllm`, ...).
 * - `anthropic` when an Anthropic key is configured; `local` when a GGUF model path is.
 * - `openai`, `anthropic` and `local` with no key/model configured resolve to the simulated
 *   provider, and `resolve()` says so (`simulated: true`): the product runs with no keys at all,
 *   and callers can tell (and log) that they are running simulated.
 * - any other name: UnknownProviderError (code UNKNOWN_MODEL, non-retryable).
 */
import type { LlmProvider } from '@gambit/shared';
import { UnknownProviderError } from './errors.js';
import { SimulatedProvider, type SimulatedProviderOptions } from './simulated.js';

/** Provider names that fall back to the simulated provider when they are not configured. */
export const FALLBACK_PROVIDER_NAMES = ['openai', 'anthropic', 'local'] as const;

export interface OpenAiCompatibleEndpoint {
  readonly baseUrl: string;
  /** Optional: local servers (vLLM, Ollama, llama.cpp) often take any key. */
  readonly apiKey?: string;
  /** Per-request timeout in ms (default 600 000). */
  readonly timeoutMs?: number;
  /** See OpenAiCompatibleOptions.maxTokensField. */
  readonly maxTokensField?: 'max_tokens' | 'max_completion_tokens';
}

export interface ProviderConfig {
  /** OpenAI-compatible endpoints by provider name (OpenAI itself under `openai`). */
  readonly openaiCompatible?: Readonly<Record<string, OpenAiCompatibleEndpoint>>;
  readonly anthropic?: { readonly apiKey: string; readonly baseUrl?: string; readonly timeoutMs?: number };
  /** Local GGUF model served in-process by node-llama-cpp, under provider name `local`. */
  readonly local?: {
    readonly modelPath: string;
    readonly threads?: number;
    readonly contextSize?: number;
    readonly concurrency?: number;
    readonly temperature?: number;
    readonly gpu?: 'auto' | false;
  };
  readonly simulated?: SimulatedProviderOptions;
}

export interface ResolvedProvider {
  readonly provider: LlmProvider;
  /** True when `name` was asked for but the simulated provider stands in (no key configured). */
  readonly simulated: boolean;
}

export interface ProviderRegistry {
  /** The provider for `name`; throws UnknownProviderError for an unknown name. */
  get(name: string): LlmProvider;
  /** Like `get`, and says whether the simulated provider stands in for `name`. */
  resolve(name: string): ResolvedProvider;
  /** Names with a real (or simulated-by-name) provider configured. */
  names(): string[];
  close(): Promise<void>;
}

export type ProviderFactory = () => LlmProvider;

export class DefaultProviderRegistry implements ProviderRegistry {
  private readonly simulatedProvider: SimulatedProvider;
  private readonly factories = new Map<string, ProviderFactory>();
  private readonly instances = new Map<string, LlmProvider>();
  private closed = false;

  constructor(simulated: SimulatedProviderOptions | undefined, factories: ReadonlyMap<string, ProviderFactory>) {
    this.simulatedProvider = new SimulatedProvider(simulated);
    for (const [name, f] of factories) this.factories.set(name, f);
  }

  resolve(name: string): ResolvedProvider {
    if (name === 'simulated') return { provider: this.simulatedProvider, simulated: false };
    const existing = this.instances.get(name);
    if (existing) return { provider: existing, simulated: false };
    const factory = this.factories.get(name);
    if (factory) {
      // Created on first use: a configured-but-unused local model is never loaded.
      const p = factory();
      this.instances.set(name, p);
      return { provider: p, simulated: false };
    }
    if ((FALLBACK_PROVIDER_NAMES as readonly string[]).includes(name)) {
      return { provider: this.simulatedProvider, simulated: true };
    }
    throw new UnknownProviderError(name);
  }

  get(name: string): LlmProvider {
    return this.resolve(name).provider;
  }

  names(): string[] {
    return ['simulated', ...this.factories.keys()];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.instances.values()];
    this.instances.clear();
    await Promise.all(all.map((p) => p.close?.()));
  }
}
