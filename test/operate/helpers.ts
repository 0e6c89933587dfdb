/**
 * Helpers of the operations tests (issue 12, issue 11 item 4): the ops port a service logged,
 * scraping its Prometheus text, and summing samples by name and labels.
 */
import type { ServiceProcess } from '@gambit/testkit';

/** The port from the service's `{"msg":"ops listening","port":N}` line. */
export async function opsPort(p: ServiceProcess, timeoutMs = 30_000): Promise<number> {
  const line = await p.waitForLine((l) => l.includes('"msg":"ops listening"'), timeoutMs);
  return (JSON.parse(line) as { port: number }).port;
}

export async function scrape(port: number, host = '127.0.0.1'): Promise<string> {
  const res = await fetch(`http://${host}:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics on ${host}:${port} answered ${res.status}`);
  return res.text();
}

/** Sum of the samples named `name` whose labels include `labels` (Prometheus text format). */
export function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last === undefined ? '' : ` (last error: ${String(last)})`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
