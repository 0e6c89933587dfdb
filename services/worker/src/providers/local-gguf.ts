/**
 * Local GGUF provider: runs a GGUF model in-process with node-llama-cpp (prebuilt llama.cpp
 * binaries from npm; `build: 'never'`, so nothing is compiled or downloaded at run time).
 * The model is loaded on first use; one context holds `concurrency` sequences, one per
 * in-flight request (a request waits for a free sequence). Each request runs in a fresh chat
 * session with the model's own chat template; the system prompt is `req.system` or none (never
 * node-llama-cpp's default). Evaluation uses `threads` CPU threads (default: all cores).
 * Usage: the context sequence's token meter, i.e. the tokens the model actually evaluated
 * (chat-template tokens included) and generated, counted by the model's own tokenizer. It is
 * exact even after an abort, so usageEstimated is false here; cachedInputTokens is 0.
 * Abort (M8): generation stops at the next token; ProviderStreamAbortedError carries the text
 * streamed so far and the metered usage up to the abort.
 */
import { availableParallelism } from 'node:os';
import {
  type LlmProvider,
  type LlmRequest,
  type LlmStreamEvent,
  type Logger,
  NonRetryableProviderError,
  RetryableError,
  silentLogger,
  type TokenUsage,
} from '@gambit/shared';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { ProviderStreamAbortedError } from './errors.js';
import { seededRng } from './prng.js';

export interface LocalGgufOptions {
  readonly name?: string;
  readonly modelPath: string;
  /** CPU threads for evaluation (default: the number of cores). */
  readonly threads?: number;
  /** Context size in tokens (default: the model's training context, at most 4096). */
  readonly contextSize?: number;
  /** Requests evaluated at once, one context sequence each (default 1). */
  readonly concurrency?: number;
  /** Sampling temperature (default 0: greedy, deterministic). Above 0 the seed comes from req.seed. */
  readonly temperature?: number;
  /** `false` forces CPU; `'auto'` (default) uses a GPU backend when the machine has one. */
  readonly gpu?: 'auto' | false;
  readonly logger?: Logger;
}

interface Loaded {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
}

type QueueItem = { kind: 'text'; text: string } | { kind: 'end'; stopReason: string } | { kind: 'error'; error: unknown };

function finishReasonOf(r: string): 'stop' | 'length' | 'other' {
  if (r === 'eogToken' || r === 'stopGenerationTrigger' || r === 'customStopTrigger') return 'stop';
  return r === 'maxTokens' ? 'length' : 'other';
}

export class LocalGgufProvider implements LlmProvider {
  readonly name: string;
  private readonly opts: LocalGgufOptions;
  private readonly logger: Logger;
  private loading: Promise<Loaded> | undefined;
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiting: Array<(s: LlamaContextSequence) => void> = [];
  private closed = false;

  constructor(opts: LocalGgufOptions) {
    this.name = opts.name ?? 'local';
    this.opts = opts;
    this.logger = opts.logger ?? silentLogger;
  }

  /** Number of CPU threads evaluation uses. */
  get threads(): number {
    return this.opts.threads ?? availableParallelism();
  }

  private load(): Promise<Loaded> {
    if (!this.loading) {
      this.loading = this.doLoad().catch((err) => {
        // A failed load is not cached: the next request tries again.
        this.loading = undefined;
        throw new NonRetryableProviderError('PROVIDER_BAD_REQUEST', `${this.name}: cannot load model ${this.opts.modelPath}`, { cause: err });
      });
    }
    return this.loading;
  }

  private async doLoad(): Promise<Loaded> {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const log = this.logger.child({ provider: this.name });
    const llama = await getLlama({
      gpu: this.opts.gpu ?? 'auto',
      build: 'never',
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) log.error({ llama: message }, 'llama.cpp');
        else log.warn({ llama: message }, 'llama.cpp');
      },
    });
    try {
      const model = await llama.loadModel({ modelPath: this.opts.modelPath });
      const concurrency = Math.max(1, this.opts.concurrency ?? 1);
      const context = await model.createContext({
        contextSize: this.opts.contextSize ?? Math.min(4096, model.trainContextSize),
        sequences: concurrency,
        threads: this.threads,
      });
      for (let i = 0; i < concurrency; i++) this.free.push(context.getSequence());
      log.info({ modelPath: this.opts.modelPath, threads: this.threads, concurrency, gpu: llama.gpu }, 'local model loaded');
      return { llama, model, context };
    } catch (err) {
      await llama.dispose();
      throw err;
    }
  }

  /** A free sequence, or undefined when `signal` aborts first (the waiter leaves the queue). */
  private acquire(signal: AbortSignal): Promise<LlamaContextSequence | undefined> {
    const s = this.free.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => {
      const waiter = (seq: LlamaContextSequence) => {
        signal.removeEventListener('abort', onAbort);
        resolve(seq);
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private release(s: LlamaContextSequence): void {
    const next = this.waiting.shift();
    if (next) next(s);
    else this.free.push(s);
  }

  async *stream(req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmStreamEvent> {
    const zero: TokenUsage = { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };
    if (signal.aborted) throw new ProviderStreamAbortedError('', zero, false);
    const { LlamaChatSession } = await import('node-llama-cpp');
    await this.load();
    const seq = signal.aborted ? undefined : await this.acquire(signal);
    if (!seq) throw new ProviderStreamAbortedError('', zero, false);
    const before = seq.tokenMeter.getState();
    const usage = (): TokenUsage => {
      const d = seq.tokenMeter.diff(before);
      return { inputTokens: d.usedInputTokens, cachedInputTokens: 0, outputTokens: d.usedOutputTokens };
    };
    // Why a second controller: a consumer that stops iterating (break) must stop generation too.
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const session = new LlamaChatSession({ contextSequence: seq, systemPrompt: req.system ?? '', autoDisposeSequence: false });
    const queue: QueueItem[] = [];
    let wake: (() => void) | undefined;
    const put = (item: QueueItem) => {
      queue.push(item);
      wake?.();
    };
    const temperature = this.opts.temperature ?? 0;
    const generation = session
      .promptWithMeta(req.prompt, {
        maxTokens: req.maxTokens,
        signal: stop.signal,
        stopOnAbortSignal: true,
        temperature,
        ...(temperature > 0 ? { seed: Math.floor(seededRng(`local\u0000${req.seed ?? ''}`)() * 2 ** 31) } : {}),
        onTextChunk: (text) => put({ kind: 'text', text }),
      })
      .then(
        (r) => put({ kind: 'end', stopReason: r.stopReason }),
        (error: unknown) => put({ kind: 'error', error }),
      );
    let text = '';
    try {
      for (;;) {
        const item = queue.shift();
        if (!item) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        if (item.kind === 'text') {
          if (signal.aborted) continue;
          text += item.text;
          yield { type: 'delta', text: item.text };
          continue;
        }
        if (signal.aborted) throw new ProviderStreamAbortedError(text, usage(), false);
        if (item.kind === 'error') {
          throw new RetryableError('PROVIDER_UNAVAILABLE', `${this.name}: generation failed`, { cause: item.error });
        }
        yield { type: 'done', text, usage: usage(), usageEstimated: false, finishReason: finishReasonOf(item.stopReason) };
        return;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      stop.abort();
      await generation;
      session.dispose({ disposeSequence: false });
      await seq.clearHistory();
      this.release(seq);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const loading = this.loading;
    this.loading = undefined;
    if (!loading) return;
    const loaded = await loading.catch(() => undefined);
    if (!loaded) return;
    this.free.length = 0;
    await loaded.context.dispose();
    await loaded.model.dispose();
    await loaded.llama.dispose();
  }
}
