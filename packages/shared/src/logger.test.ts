/**
 * Issue 10 item 9: the services' logger censors prompts, outputs, inputs and keys (top level and
 * one level down) and keeps every other field, checked on the JSON lines pino really writes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, LOG_REDACTED } from './logger.js';

const dir = mkdtempSync(join(tmpdir(), 'gambit-logger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logged(write: (log: ReturnType<typeof createLogger>) => void): Array<Record<string, unknown>> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.log`);
  write(createLogger({ name: 'redact-test', level: 'debug', destination: file }));
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('logger redaction (issue 10 item 9)', () => {
  it('censors secret fields at the top level and one level down; keeps the rest', () => {
    const [line] = logged((log) =>
      log.info(
        {
          runId: 'r1',
          prompt: 'my secret prompt',
          output: 'model answer',
          inputs: { q: 'private question' },
          apiKey: 'sk-live-123',
          password: 'hunter2',
          node: { id: 'answer', prompt: 'nested prompt', output: 'nested output', tokens: 12 },
          provider: { key: 'gmb_abc', name: 'openai' },
        },
        'attempt done',
      ),
    );
    const text = JSON.stringify(line);
    for (const secret of ['my secret prompt', 'model answer', 'private question', 'sk-live-123', 'hunter2', 'nested prompt', 'nested output', 'gmb_abc'])
      expect(text).not.toContain(secret);
    expect(line).toMatchObject({
      msg: 'attempt done',
      runId: 'r1',
      prompt: LOG_REDACTED,
      output: LOG_REDACTED,
      inputs: LOG_REDACTED,
      apiKey: LOG_REDACTED,
      password: LOG_REDACTED,
      node: { id: 'answer', prompt: LOG_REDACTED, output: LOG_REDACTED, tokens: 12 },
      provider: { key: LOG_REDACTED, name: 'openai' },
    });
  });

  it('censors in child loggers and leaves the logged object itself unchanged', () => {
    const obj = { prompt: 'p', tenant: 't1' };
    const [line] = logged((log) => log.child({ component: 'x' }).warn(obj, 'w'));
    expect(line).toMatchObject({ component: 'x', tenant: 't1', prompt: LOG_REDACTED });
    expect(obj.prompt).toBe('p');
  });
});
