/**
 * STYLE.md 10: a test file fails if it leaves a worker, connection, server, child process or
 * timer open. Runs after every file's own hooks (setup-file hooks are the outermost); the
 * resources are Node's own view (`process.getActiveResourcesInfo()`), less the test runner's
 * IPC pipe and terminal.
 */
import { afterAll } from 'vitest';

const RUNNER = new Set(['TTYWrap', 'PipeWrap']);

function open(): string[] {
  return process.getActiveResourcesInfo().filter((r) => !RUNNER.has(r));
}

afterAll(async () => {
  // Closing is asynchronous (a socket's end, a child's exit): give it a moment, never hide a leak.
  const deadline = Date.now() + 2_000;
  let left = open();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50).unref());
    left = open();
  }
  if (left.length > 0) {
    const counts: Record<string, number> = {};
    for (const r of left) counts[r] = (counts[r] ?? 0) + 1;
    throw new Error(`the test file left resources open: ${JSON.stringify(counts)}`);
  }
});
