import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { DEFAULT_MODEL_PROFILES, expectedLlmDurationMs, latencyProfile, parseModelProfiles } from './latency.js';

const MODELS = [
  'gpt-5',
  'gpt-5-mini',
  'gpt-5-nano',
  'gpt-4o',
  'gpt-4o-mini',
  'gpt-4.1',
  'gpt-4.1-mini',
  'claude-sonnet-4-5',
  'claude-haiku-4-5',
  'claude-opus-4-1',
  'gemini-2.5-pro',
  'gemini-2.5-flash',
];

describe('M4 duration estimates: per-model latency profiles from one configuration file', () => {
  it('has a profile for every listed model and a default, as in model-profiles.json', () => {
    const file = JSON.parse(readFileSync(new URL('./model-profiles.json', import.meta.url), 'utf8'));
    expect(DEFAULT_MODEL_PROFILES.profiles).toEqual(file.profiles);
    for (const m of MODELS) expect(Object.keys(DEFAULT_MODEL_PROFILES.profiles)).toContain(m);
    expect(file.note).toMatch(/2-10x/);
  });

  it('matches exact names, provider-prefixed names, dated versions (longest prefix), else default', () => {
    const p = DEFAULT_MODEL_PROFILES.profiles;
    expect(latencyProfile('gpt-5-mini')).toBe(p['gpt-5-mini']);
    expect(latencyProfile('openai/gpt-4o')).toBe(p['gpt-4o']);
    expect(latencyProfile('gpt-5-mini-2025-08-07')).toBe(p['gpt-5-mini']);
    expect(latencyProfile('gpt-4o-mini-2024-07-18')).toBe(p['gpt-4o-mini']);
    expect(latencyProfile('llama-3-8b')).toBe(p.default);
  });

  it('duration = ttft + 1000 · out / tps', () => {
    const table = parseModelProfiles({ profiles: { m: { ttftMs: 300, tokensPerSec: 50 }, default: { ttftMs: 1, tokensPerSec: 1 } } });
    expect(expectedLlmDurationMs('m', 100, table)).toBe(2300);
    expect(expectedLlmDurationMs('m', 0, table)).toBe(300);
    expect(expectedLlmDurationMs('other', 2, table)).toBe(2001);
  });

  it('rejects a bad profile file naming the model and field', () => {
    try {
      parseModelProfiles({ profiles: { m: { ttftMs: 1, tokensPerSec: 0 } } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['profiles.m.tokensPerSec', 'profiles.default']);
    }
  });
});
