import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { opClassKeys } from '../redis/keys.js';
import { histogramOf, mean } from './distribution.js';
import {
  assertOperationClass,
  decodeEstimates,
  EMPTY_ESTIMATES,
  encodeEstimates,
  operationClassOf,
  sampleIncrements,
} from './operation-class.js';

const llm = (model: string, prompt: string) => ({ kind: 'llm' as const, provider: 'openai', model, prompt });

describe('M4 operation classes', () => {
  it('is the model plus the prompt template, never the node id', () => {
    const a = operationClassOf(llm('gpt-5-mini', 'Classify: {{inputs.text}}'));
    expect(a).toMatch(/^llm:openai\/gpt-5-mini#[0-9a-f]{8}$/);
    expect(operationClassOf(llm('gpt-5-mini', 'Classify: {{inputs.text}}'))).toBe(a);
    expect(operationClassOf(llm('gpt-5-mini', 'Summarise: {{inputs.text}}'))).not.toBe(a);
    expect(operationClassOf(llm('gpt-5', 'Classify: {{inputs.text}}'))).not.toBe(a);
  });

  it('separates tools by name and argument template, in any key order', () => {
    const grep = operationClassOf({ kind: 'tool', tool: 'grep', args: { q: '{{x}}', path: '.' } });
    expect(operationClassOf({ kind: 'tool', tool: 'grep', args: { path: '.', q: '{{x}}' } })).toBe(grep);
    expect(operationClassOf({ kind: 'tool', tool: 'run_tests', args: { q: '{{x}}', path: '.' } })).not.toBe(grep);
    expect(operationClassOf({ kind: 'tool', tool: 'bash' }, 'shell')).toBe('tool:bash#shell');
  });

  it('makes key-safe ids that the key builder accepts', () => {
    const id = operationClassOf({ kind: 'llm', provider: 'my provider', model: 'm {x}', prompt: 'p' });
    expect(id).not.toMatch(/[{}\s]/);
    expect(() => assertOperationClass('opClass', id)).not.toThrow();
    expect(opClassKeys({ prefix: 'g' }, 't1', id).dist).toBe(`g:{op:t1:${id}}:dist`);
    expect(() => assertOperationClass('opClass', 'node-3')).toThrow(ValidationError);
  });
});

describe('M4 stored estimates (Redis hash form)', () => {
  it('round-trips: increments summed into a hash decode to the histogram of the samples', () => {
    const samples = [
      { durationMs: 1200, ttftMs: 300, outputTokens: 90 },
      { durationMs: 800, ttftMs: 250, outputTokens: 60 },
      { durationMs: 5000 },
    ];
    const hash: Record<string, number> = {};
    for (const s of samples) for (const [f, v] of sampleIncrements(s)) hash[f] = (hash[f] ?? 0) + v;
    const e = decodeEstimates(Object.fromEntries(Object.entries(hash).map(([k, v]) => [k, String(v)])));
    expect(e.durationMs).toEqual(histogramOf([1200, 800, 5000]));
    expect(e.ttftMs).toEqual(histogramOf([300, 250]));
    expect(mean(e.outputTokens)).toBe(75);
    expect(decodeEstimates(encodeEstimates(e))).toEqual(e);
    expect(decodeEstimates({})).toEqual(EMPTY_ESTIMATES);
  });

  it('rejects a corrupt field instead of skipping it', () => {
    expect(() => decodeEstimates({ 'd:n': 'x' })).toThrow(/estimates\.d:n/);
    expect(() => decodeEstimates({ 'q:1': '1' })).toThrow(ValidationError);
    expect(() => sampleIncrements({ durationMs: -5 })).toThrow(/durationMs/);
  });
});
