/** Test helper: drains a provider stream into its deltas, its done event, or its error. */
import type { LlmProvider, LlmRequest, LlmStreamEvent } from '@gambit/shared';

export type DoneEvent = Extract<LlmStreamEvent, { type: 'done' }>;

export interface Collected {
  readonly deltas: string[];
  readonly deltaAtMs: number[];
  readonly done?: DoneEvent;
  readonly error?: unknown;
  readonly elapsedMs: number;
}

/** `onDelta` may abort the controller; it is called after each delta with the count so far. */
export async function collect(
  provider: LlmProvider,
  req: LlmRequest,
  signal: AbortSignal = new AbortController().signal,
  onDelta?: (count: number, text: string) => void,
): Promise<Collected> {
  const start = performance.now();
  const deltas: string[] = [];
  const deltaAtMs: number[] = [];
  let done: DoneEvent | undefined;
  try {
    for await (const ev of provider.stream(req, signal)) {
      if (ev.type === 'delta') {
        deltas.push(ev.text);
        deltaAtMs.push(performance.now() - start);
        onDelta?.(deltas.length, ev.text);
      } else {
        if (done) throw new Error('second done event');
        done = ev;
      }
    }
  } catch (error) {
    return { deltas, deltaAtMs, error, elapsedMs: performance.now() - start, ...(done ? { done } : {}) };
  }
  return { deltas, deltaAtMs, elapsedMs: performance.now() - start, ...(done ? { done } : {}) };
}
