/**
 * Deterministic pseudo-text for the simulated provider when a request scripts no output: plain
 * English-looking sentences whose length (in o200k tokens) is drawn around 0.6 x maxTokens.
 */
import { gaussian, type Rng } from './prng.js';
import { encodeTokens } from './tokens.js';

const WORDS = (
  'the of and to in is that for it as with was on be by this are or from at an which have not ' +
  'they one has can more all their will there been would also other when into only some time ' +
  'these two may then first any new use such like than most over after each where many through ' +
  'system model data result value order request answer route check label field record user plan ' +
  'step call tool price cost token stream signal queue worker review report draft summary reply ' +
  'ticket account invoice policy refund status update approve reject escalate confirm schedule ' +
  'because however therefore while before during within without between against across under ' +
  'quickly clearly likely simply directly carefully usually often still again already together ' +
  'good clear short long simple final next previous current known correct valid complete ready'
).split(' ');

export interface PseudoText {
  readonly tokens: number[];
  readonly finishReason: 'stop' | 'length';
}

/**
 * Target length is log-normal around 0.6·maxTokens (σ = 0.35), so a few percent of requests
 * would run past maxTokens: those are cut at maxTokens with finishReason 'length', as a real
 * model's would be.
 */
export function pseudoText(rng: Rng, maxTokens: number): PseudoText {
  const limit = Math.max(1, Math.floor(maxTokens));
  const target = Math.max(1, Math.round(limit * 0.6 * Math.exp(0.35 * gaussian(rng))));
  const want = Math.min(target, limit);
  let text = '';
  let sentenceLeft = 0;
  let tokens: number[] = [];
  // Common words are one token each with their leading space; overshoot, then cut exactly.
  while (tokens.length < want) {
    const batch = Math.ceil((want - tokens.length) * 1.2) + 4;
    for (let i = 0; i < batch; i++) {
      const w = WORDS[Math.floor(rng() * WORDS.length)]!;
      if (sentenceLeft === 0) {
        sentenceLeft = 6 + Math.floor(rng() * 10);
        text += (text ? ' ' : '') + w[0]!.toUpperCase() + w.slice(1);
      } else {
        text += ' ' + w;
      }
      sentenceLeft--;
      if (sentenceLeft === 0) text += '.';
    }
    tokens = encodeTokens(text);
  }
  return { tokens: tokens.slice(0, want), finishReason: target > limit ? 'length' : 'stop' };
}
