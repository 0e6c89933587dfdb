/**
 * The provider registry: maps a workflow node's provider name to an `LlmProvider`.
 *
 * Names:
 * - `simulated`: always present (SimulatedProvider).
 * - each configured OpenAI-compatible endpoint, by its configured name (`openai`, `vllm`, ...).
 * - `anthropic` when an Anthropic key is configured; `local` when a GGUF model path is.
 * - `openai`, `anthropic` and `local` with no key/model configured (issue 10 item 8, no silent
 *   fake provider): ProviderNotConfiguredError (code PROVIDER_NOT_CONFIGURED, non-retryable),
 *   naming the provider and the variable that configures it; the node fails. Only when the
 *   operator opts in (`simulatedFallback`, GAMBIT_SIMULATED_FALLBACK=1 on the worker) does the
 *   simulated provider stand in, and `resolve()` says so (`simulated: true`) and `servedBy()`
 *   names `simulated` (with `simulates: <name>`) for spans and metrics: simulated work never
 *   carries a real provider's name.
 * - any other name: UnknownProviderError (code UNKNOWN_MODEL, non-retryable).
 */
import type { LlmProvider } from '@gambit/shared';
import { ProviderNotConfiguredError, UnknownProviderError } from './errors.js';
import { SimulatedProvider, type SimulatedProviderOptions } from './simulated.js';

/** Provider names the simulated provider may stand in for (only with the operator's opt-in), and the variable that configures each. */
export const FALLBACK_PROVIDER_ENV = { openai: 'OPENAI_API_KEY', anthropic: 'ANTHROPIC_API_KEY', local: 'GAMBIT_LOCAL_MODEL_PATH' } as const;
export const FALLBACK_PROVIDER_NAMES = Object.keys(FALLBACK_PROVIDER_ENV) as ReadonlyArray<keyof typeof FALLBACK_PROVIDER_ENV>;

function isFallbackName(name: string): name is keyof typeof FALLBACK_PROVIDER_ENV {
  return Object.hasOwn(FALLBACK_PROVIDER_ENV, name);
}

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
  /**
   * Issue 10 item 8: the operator's explicit opt-in (GAMBIT_SIMULATED_FALLBACK=1) to run
   * `openai`, `anthropic` and `local` on the simulated provider when they are not configured.
   * Off by default: such a node fails with ProviderNotConfiguredError.
   */
  readonly simulatedFallback?: boolean;
}

export interface ResolvedProvider {
  readonly provider: LlmProvider;
  /** True when `name` was asked for but the simulated provider stands in (not configured, fallback opted in). */
  readonly simulated: boolean;
}

/** Who serves a provider name, as spans and metrics report it. */
export interface ServedBy {
  /** `simulated` whenever the simulated provider does the work, else the name itself. */
  readonly provider: string;
  /** The name the workflow asked for, when the simulated provider stands in for it. */
  readonly simulates?: string;
}

export interface ProviderRegistry {
  /** The provider for `name`; throws UnknownProviderError for an unknown name. */
  get(name: string): LlmProvider;
  /** Like `get`, and says whether the simulated provider stands in for `name`. */
  resolve(name: string): ResolvedProvider;
  /** Who serves `name` (never throws; for spans and metrics, before the call). */
  servedBy(name: string): ServedBy;
  /** Names with a real (or simulated-by-name) provider configured. */
  names(): string[];
  /** The names the simulated provider stands in for (the fallback is on and they are not configured). */
  simulatedStandIns(): string[];
  close(): Promise<void>;
}

export type ProviderFactory = () => LlmProvider;

export class DefaultProviderRegistry implements ProviderRegistry {
  private readonly simulatedProvider: SimulatedProvider;
  private readonly factories = new Map<string, ProviderFactory>();
  private readonly instances = new Map<string, LlmProvider>();
  private closed = false;

  private readonly simulatedFallback: boolean;

  constructor(simulated: SimulatedProviderOptions | undefined, factories: ReadonlyMap<string, ProviderFactory>, opts: { simulatedFallback?: boolean } = {}) {
    this.simulatedProvider = new SimulatedProvider(simulated);
    this.simulatedFallback = opts.simulatedFallback === true;
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
    if (isFallbackName(name)) {
      if (this.simulatedFallback) return { provider: this.simulatedProvider, simulated: true };
      throw new ProviderNotConfiguredError(name, FALLBACK_PROVIDER_ENV[name]);
    }
    throw new UnknownProviderError(name);
  }

  servedBy(name: string): ServedBy {
    if (name !== 'simulated' && !this.factories.has(name) && isFallbackName(name) && this.simulatedFallback) return { provider: 'simulated', simulates: name };
    return { provider: name };
  }

  /** The names the simulated provider stands in for (the fallback is on and they are not configured). */
  simulatedStandIns(): string[] {
    return this.simulatedFallback ? FALLBACK_PROVIDER_NAMES.filter((n) => !this.factories.has(n)) : [];
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
