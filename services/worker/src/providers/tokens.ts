/**
 * Local token counting with gpt-tokenizer's o200k_base encoding (M2, M8). Used by the simulated
 * provider for all its counts, and by the hosted adapters to estimate usage when the provider
 * reports none (an aborted stream). Special-token strings in user text are counted as plain
 * text, never rejected: a prompt that happens to contain `<|endoftext|>` must still be billed.
 */
import { decode, encode } from 'gpt-tokenizer/encoding/o200k_base';

const PLAIN = { disallowedSpecial: new Set<string>() };

export function encodeTokens(text: string): number[] {
  return encode(text, PLAIN);
}

export function decodeTokens(tokens: readonly number[]): string {
  return decode(tokens as number[]);
}

export function countTokens(text: string | undefined): number {
  return text ? encode(text, PLAIN).length : 0;
}

/** Input tokens of a request: system and prompt, counted separately (as separate messages). */
export function countInputTokens(req: { readonly system?: string; readonly prompt: string }): number {
  return countTokens(req.system) + countTokens(req.prompt);
}
