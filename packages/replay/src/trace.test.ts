/** M9 stage 1: the trace format round-trips, and every bad line is reported as `line N: field: reason`. */
import { describe, expect, it } from 'vitest';
import { parseTrace, parseTraceLines, TraceFormatError } from './reader.js';
import { type RunInput, RunSchema, runDurationMs, toJsonLines } from './trace.js';

const run: RunInput = {
  v: 1,
  runId: 'r1',
  tenant: 'acme',
  workflow: 'auto-reply',
  startUnixMs: 1_700_000_000_000,
  operations: [
    {
      id: 'classify',
      kind: 'llm',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      startMs: 0,
      durationMs: 420,
      'gen_ai.usage.input_tokens': 900,
      'gen_ai.usage.cache_read.input_tokens': 512,
      'gen_ai.usage.output_tokens': 2,
    },
    {
      id: 'draft',
      kind: 'llm',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      dependencies: ['classify'],
      startMs: 430,
      durationMs: 2100,
      'gen_ai.usage.input_tokens': 950,
      'gen_ai.usage.output_tokens': 180,
      costNanoUsd: 4_175_000,
    },
    { id: 'send', kind: 'tool', 'gen_ai.tool.name': 'send_message', dependencies: ['draft'], startMs: 2530, durationMs: 80, effects: 'staged' },
  ],
  opportunities: [
    {
      from: 'classify',
      to: 'draft',
      type: 'router_k_way',
      k: 4,
      guess: 'billing',
      actual: 'billing',
      matched: true,
      guesser: { 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', durationMs: 150, 'gen_ai.usage.input_tokens': 300, 'gen_ai.usage.output_tokens': 2 },
    },
  ],
};

describe('trace format (M9 stage 1)', () => {
  it('round-trips through JSON lines with defaults filled in', () => {
    const text = toJsonLines([run, { ...run, runId: 'r2' }]);
    expect(text.split('\n').filter((l) => l !== '')).toHaveLength(2);
    const back = parseTrace(text);
    expect(back).toEqual([RunSchema.parse(run), RunSchema.parse({ ...run, runId: 'r2' })]);
    expect(toJsonLines(back)).toBe(text);
    expect(back[0]!.operations[0]!.dependencies).toEqual([]);
    expect(runDurationMs(back[0]!)).toBe(2610);
  });

  it('skips blank lines and names the line, the field and the reason of every bad line', () => {
    const good = JSON.stringify(run);
    const noModel = JSON.stringify({ ...run, operations: [{ ...run.operations[0], 'gen_ai.request.model': undefined }] });
    const badDep = JSON.stringify({
      ...run,
      operations: [run.operations[0], { ...run.operations[1], dependencies: ['nope'] }],
      opportunities: [],
    });
    const early = JSON.stringify({ ...run, operations: [run.operations[0], { ...run.operations[1], startMs: 100 }, run.operations[2]] });
    const notDep = JSON.stringify({ ...run, opportunities: [{ ...run.opportunities![0], from: 'send' }] });
    const matchedNoGuess = JSON.stringify({ ...run, opportunities: [{ ...run.opportunities![0], guess: null }] });
    const text = [good, '', noModel, '{oops', badDep, early, notDep, matchedNoGuess].join('\n');
    const { runs, issues } = parseTraceLines(text);
    expect(runs).toHaveLength(1);
    const shown = issues.map((i) => `line ${i.line}: ${i.path}: ${i.message}`);
    expect(shown).toContain('line 3: operations[0].gen_ai.request.model: required for an llm operation');
    expect(shown.find((s) => s.startsWith('line 4: (json): not valid JSON'))).toBeDefined();
    expect(shown).toContain('line 5: operations[1].dependencies[0]: unknown operation "nope"');
    expect(shown).toContain('line 6: operations[1].startMs: starts at 100 ms, before its dependency "classify" ends at 420 ms');
    expect(shown).toContain('line 7: opportunities[0].to: "draft" does not depend on "send"');
    expect(shown).toContain('line 8: opportunities[0].matched: cannot be true without a guess');
    expect(() => parseTrace(text)).toThrow(TraceFormatError);
    try {
      parseTrace(text);
    } catch (err) {
      expect(err).toBeInstanceOf(TraceFormatError);
      expect((err as TraceFormatError).code).toBe('VALIDATION');
      expect((err as TraceFormatError).message.split('\n')).toEqual(shown);
    }
  });

  it('rejects an empty trace and cycles', () => {
    expect(() => parseTrace('\n\n')).toThrow(TraceFormatError);
    const cyc = {
      ...run,
      operations: [
        { ...run.operations[0], dependencies: ['draft'] },
        { ...run.operations[1], dependencies: ['classify'] },
      ],
      opportunities: [],
    };
    const { issues } = parseTraceLines(JSON.stringify(cyc));
    expect(issues.some((i) => i.path === 'operations' && i.message.startsWith('cycle:'))).toBe(true);
  });
});
