/**
 * Runs a service as a real child process (node dist/main.js), collects its output lines, and
 * lets tests wait for a line, SIGTERM it, or SIGKILL it. `stop()` is idempotent.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServiceProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: string[];
  waitForLine(pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves on exit. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  exited(): Promise<number | null>;
}

export function startProcess(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string | undefined>,
): ServiceProcess {
  return startCommand(name, process.execPath, [script, ...args], { ...process.env, ...env });
}

/**
 * Runs any command (e.g. `ip netns exec <ns> node main.js`) with exactly `env` (nothing
 * inherited), with the same line capture and stop semantics as `startProcess`.
 */
export function startCommand(name: string, command: string, args: string[], env: Record<string, string | undefined>): ServiceProcess {
  const proc = spawn(command, args, {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ pred: (l: string) => boolean; resolve: (l: string) => void }> = [];
  const onData = (buf: Buffer, carry: { rest: string }) => {
    const text = carry.rest + buf.toString('utf8');
    const parts = text.split('\n');
    carry.rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (process.env.GAMBIT_TEST_ECHO === '1') process.stderr.write(`[${name}] ${line}\n`);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i];
        if (w?.pred(line)) {
          waiters.splice(i, 1);
          w.resolve(line);
        }
      }
    }
  };
  const outCarry = { rest: '' };
  const errCarry = { rest: '' };
  proc.stdout?.on('data', (b: Buffer) => onData(b, outCarry));
  proc.stderr?.on('data', (b: Buffer) => onData(b, errCarry));
  const exitP = new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    else proc.once('exit', (code) => resolve(code));
  });
  const isDone = () => proc.exitCode !== null || proc.signalCode !== null;
  return {
    name,
    proc,
    lines,
    waitForLine(pred, timeoutMs = 20_000) {
      const existing = lines.find(pred);
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          reject(new Error(`${name}: no matching line within ${timeoutMs} ms; last lines:\n${lines.slice(-20).join('\n')}`));
        }, timeoutMs);
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
    async stop(graceMs = 5_000) {
      if (isDone()) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exitP;
      clearTimeout(t);
    },
    async kill() {
      if (isDone()) return;
      proc.kill('SIGKILL');
      await exitP;
    },
    exited: () => exitP,
  };
}
