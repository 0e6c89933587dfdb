/**
 * Token counting (METHOD.md M2, M8) with a real BPE tokenizer: gpt-tokenizer's o200k_base (the
 * GPT-4o / GPT-5 encoding). Used for N_in of a prompt rendered with î, and for the output
 * tokens of an aborted stream (providers report no usage after an abort), which callers mark
 * as estimated. For non-OpenAI models it is an estimate of their own tokenizer's count.
 */
import { countTokens as countO200k } from 'gpt-tokenizer/encoding/o200k_base';

/** Special-token text such as `<|endoftext|>` is counted as ordinary text, never rejected. */
const ENCODE_OPTIONS = { disallowedSpecial: new Set<string>() };

export const TOKENIZER_ENCODING = 'o200k_base';

/** Number of o200k_base tokens in `text` (0 for the empty string). */
export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  return countO200k(text, ENCODE_OPTIONS);
}
