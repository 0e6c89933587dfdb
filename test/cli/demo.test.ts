/**
 * The README's main command, end to end: `gambit demo` starts estimator, workers and scheduler
 * as processes against a real Redis, runs every demo workflow with and without speculation and
 * prints the table (issue 4 item 4). Small and time-scaled so it stays a test, not a benchmark.
 */
import { fileURLToPath } from 'node:url';
import { startProcess } from '@gambit/testkit';
import { describe, expect, inject, it } from 'vitest';

const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

describe('gambit demo (the main command)', () => {
  it('runs the demo workflows through real processes and prints the summary table', async () => {
    const p = startProcess('demo', bin, ['demo', '--runs', '2', '--time-scale', '0.05', '--workers', '1', '--concurrency', '4'], {
      REDIS_URL: inject('redisUrl'),
      OPENAI_API_KEY: undefined,
      ANTHROPIC_API_KEY: undefined,
    });
    const code = await p.exited();
    const out = p.lines.join('\n');
    expect(code, out).toBe(0);
    expect(out).toContain(`using Redis at ${inject('redisUrl')}`);
    // Issue 10 item 8: with no key the demo opts in to the simulated fallback, and says so.
    expect(out).toContain('the demo workers run with GAMBIT_SIMULATED_FALLBACK=1');
    const header = p.lines.find((l) => l.startsWith('workflow '));
    expect(header).toMatch(/p50 on\s+p50 off\s+saved\s+\$\/run on\s+\$\/run off\s+\$ wasted\s+launched\s+hits\s+misses\s+cancels/);
    for (const wf of ['auto-reply', 'gated-send', 'extract-charge', 'summarise-translate']) {
      const row = p.lines.find((l) => l.startsWith(`${wf} `));
      expect(row, `${wf} row`).toBeDefined();
      // every row has a measured latency for both modes and a dollar figure
      expect(row).toMatch(/\d+\.\d\d s\s+\d+\.\d\d s/);
      expect(row).toMatch(/\$0\.\d{6}/);
    }
    // the irreversible charge is never speculated: its WAITs are all inadmissible
    expect(p.lines.find((l) => l.startsWith('extract-charge '))).toMatch(/inadmissible \d+/);
    expect(out).not.toMatch(/FAILED/);
  }, 120_000);

  it('rejects a bad flag with an error naming it, before starting anything', async () => {
    const p = startProcess('demo-bad', bin, ['demo', '--alpha', '2'], { REDIS_URL: inject('redisUrl') });
    expect(await p.exited()).toBe(1);
    expect(p.lines).toContain('  --alpha: must be a number in [0, 1], got "2"');
    expect(p.lines.join('\n')).not.toMatch(/redis-server|services are up/);
  });
});
