/** M5/M11: the tau-bench airline importer, and the README's measured majority-vote hit rate. */
import { countTokens } from '@gambit/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../trace.js';
import { importTauBench, loadTauBenchData, majorityVote, majorityVoteHitRate, type TauData } from './tau-bench.js';

let data: TauData;
let runs: Run[];
beforeAll(() => {
  data = loadTauBenchData();
  runs = importTauBench(data);
});

describe('tau-bench airline importer', () => {
  it('turns each of the 200 trajectories into a run with one LLM op per assistant turn and one tool op per call', () => {
    expect(runs).toHaveLength(200);
    let turns = 0;
    let calls = 0;
    for (const r of data.records)
      for (const m of r.messages) {
        if (m.role === 'assistant') turns++;
        calls += m.tool_calls?.length ?? 0;
      }
    const ops = runs.flatMap((r) => r.operations);
    expect(ops.filter((o) => o.kind === 'llm')).toHaveLength(turns);
    expect(ops.filter((o) => o.kind === 'tool')).toHaveLength(calls);
    expect(calls).toBe(1164);
    expect(runs.flatMap((r) => r.opportunities)).toHaveLength(calls);
    // Runs are in time order, trial-major, with unique ids.
    expect(new Set(runs.map((r) => r.runId)).size).toBe(200);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.startUnixMs).toBeGreaterThan(runs[i - 1]!.startUnixMs);
  });

  it('counts tokens from the text: the first turn reads the whole system prompt, later turns cache the prefix', () => {
    const first = runs[0]!.operations[0]!;
    expect(first.kind).toBe('llm');
    expect(first['gen_ai.usage.input_tokens']).toBeGreaterThanOrEqual(countTokens(data.systemPrompt));
    expect(first['gen_ai.usage.cache_read.input_tokens']).toBe(0);
    const llms = runs[0]!.operations.filter((o) => o.kind === 'llm');
    const second = llms[1]!;
    expect(second['gen_ai.usage.input_tokens']).toBeGreaterThan(first['gen_ai.usage.input_tokens']);
    expect(second['gen_ai.usage.cache_read.input_tokens']).toBe(Math.floor(first['gen_ai.usage.input_tokens'] / 128) * 128);
    for (const o of llms) expect(o['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
  });

  it('guesses each tool call by majority vote of the other trials and reproduces the ~40% exact-hit rate', () => {
    const h = majorityVoteHitRate(runs);
    expect(h.calls).toBe(1164);
    expect(h.hits).toBe(469);
    expect(h.rate).toBeGreaterThan(0.38);
    expect(h.rate).toBeLessThan(0.42);
    expect(h.noGuess).toBe(141);
    // Every opportunity is an LLM turn → its own tool call, typed tool_args.
    for (const r of runs)
      for (const o of r.opportunities) {
        expect(o.type).toBe('tool_args');
        expect(r.operations.find((op) => op.id === o.to)?.dependencies).toEqual([o.from]);
        expect(o.matched).toBe(o.guess !== null && o.guess === o.actual);
      }
  });

  it('majority vote: most frequent call, ties to the earliest trial, null when nobody got that far', () => {
    expect(majorityVote([['a'], ['b'], ['b']], 0)).toBe('b');
    expect(majorityVote([['a'], ['b']], 0)).toBe('a');
    expect(majorityVote([['a'], []], 1)).toBeNull();
  });
});
