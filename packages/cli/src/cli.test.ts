/** M9 stage 1: the built `gambit` CLI as a child process: replay, import, generate, and errors naming line and field. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

function gambit(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gambit-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('gambit CLI', () => {
  it('generates an archetype trace and replays it: priors, table, headroom', async () => {
    const trace = join(dir, 'auto.jsonl');
    const gen = await gambit(['generate', 'auto-reply', '--runs', '60', '--seed', '4', '-o', trace]);
    expect(gen.code).toBe(0);
    const r = await gambit(['replay', trace, '--alpha', '0.5', '--lambda', '0.01']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('60 runs from');
    expect(r.stdout).toMatch(/router_k_way\s+Beta\(/);
    for (const p of ['never', 'always', 'threshold', 'ev', 'oracle']) expect(r.stdout).toMatch(new RegExp(`^${p}\\s+60\\s`, 'm'));
    expect(r.stdout).toContain('Headroom (M11):');
  });

  it('--json gives machine-readable output for one policy', async () => {
    const trace = join(dir, 'code.jsonl');
    expect((await gambit(['generate', 'code-agent', '--runs', '30', '-o', trace])).code).toBe(0);
    const decisions = join(dir, 'decisions.jsonl');
    const r = await gambit(['replay', trace, '--policy', 'ev', '--json', '--posterior-mode', 'lcb:0.1', '--alpha', '1', '--decisions', decisions]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { runs: number; policies: Array<{ policy: string; runs: number }>; posteriorMode: unknown; headroom: { verdict: string } };
    expect(out.runs).toBe(30);
    expect(out.policies.map((p) => p.policy)).toEqual(['ev']);
    expect(out.posteriorMode).toEqual({ kind: 'lower_bound', quantile: 0.1 });
    expect(typeof out.headroom.verdict).toBe('string');
    const lines = (await readFile(decisions, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { policy: string; record: { decisionId: string; posteriors: Array<{ mode: string }> } });
    expect(lines).toHaveLength(30); // one decision (test → fix) per run
    expect(lines.every((l) => l.policy === 'ev' && l.record.posteriors[0]!.mode === 'lcb')).toBe(true);
  });

  it('imports the tau-bench trajectories and reports the majority-vote hit rate', async () => {
    const trace = join(dir, 'tau.jsonl');
    const r = await gambit(['import', 'tau-bench', '-o', trace]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('imported 200 runs; majority-vote guesses match 469 of 1164 tool calls (40.3%)');
  });

  it('imports OTLP/JSON spans (one export per line) and replays them', async () => {
    const ns = (ms: number) => String(BigInt(1_700_000_000_000 + ms) * 1_000_000n);
    const s = (v: string) => ({ stringValue: v });
    const doc = (traceId: string, at: number) => ({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId,
                  spanId: `${traceId}1`,
                  name: 'chat gpt-4o',
                  startTimeUnixNano: ns(at),
                  endTimeUnixNano: ns(at + 900),
                  attributes: [
                    { key: 'gen_ai.operation.name', value: s('chat') },
                    { key: 'gen_ai.provider.name', value: s('openai') },
                    { key: 'gen_ai.request.model', value: s('gpt-4o') },
                    { key: 'gen_ai.usage.input_tokens', value: { intValue: '800' } },
                    { key: 'gen_ai.usage.output_tokens', value: { intValue: '40' } },
                  ],
                },
                {
                  traceId,
                  spanId: `${traceId}2`,
                  name: 'execute_tool lookup',
                  startTimeUnixNano: ns(at + 900),
                  endTimeUnixNano: ns(at + 1400),
                  attributes: [
                    { key: 'gen_ai.operation.name', value: s('execute_tool') },
                    { key: 'gen_ai.tool.name', value: s('lookup') },
                    { key: 'gen_ai.tool.call.arguments', value: s('{"id":7}') },
                    { key: 'gambit.effects', value: s('none') },
                  ],
                },
              ],
            },
          ],
        },
      ],
    });
    const otlp = join(dir, 'spans.jsonl');
    await writeFile(otlp, `${JSON.stringify(doc('t1', 0))}\n${JSON.stringify(doc('t2', 5000))}\n${JSON.stringify(doc('t3', 9000))}\n`);
    const trace = join(dir, 'otlp-trace.jsonl');
    const imp = await gambit(['import', 'otlp', otlp, '-o', trace, '--tenant', 'acme']);
    expect(imp.code).toBe(0);
    expect(imp.stderr).toContain('imported 3 runs, 3 opportunities');
    const r = await gambit(['replay', trace, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { runs: number; policies: Array<{ policy: string; hits: number; speculations: number }> };
    expect(out.runs).toBe(3);
    // The first run has no history to guess from; the other two guess the repeated call and hit.
    expect(out.policies.find((p) => p.policy === 'oracle')!.hits).toBe(2);
  });

  it('a bad trace: prints `line N: field: reason` for each bad line and exits non-zero', async () => {
    const trace = join(dir, 'bad.jsonl');
    const good = {
      v: 1,
      runId: 'a',
      tenant: 't',
      workflow: 'w',
      startUnixMs: 0,
      operations: [{ id: 'x', kind: 'llm', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', startMs: 0, durationMs: 5 }],
    };
    const bad = { ...good, operations: [{ ...good.operations[0], durationMs: -1 }] };
    await writeFile(trace, `${JSON.stringify(good)}\n${JSON.stringify(bad)}\n{nope\n`);
    const r = await gambit(['replay', trace]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('line 2: operations[0].durationMs: ');
    expect(r.stderr).toContain('line 3: (json): not valid JSON');
    expect(r.stderr).not.toContain('line 1:');
  });

  it('rejects a missing file and an out-of-range α with a non-zero exit', async () => {
    const missing = await gambit(['replay', join(dir, 'none.jsonl')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ENOENT');
    const alpha = await gambit(['replay', join(dir, 'none.jsonl'), '--alpha', '2']);
    expect(alpha.code).not.toBe(0);
    expect(alpha.stderr).toContain('α must be a number in [0, 1]');
  });
});
