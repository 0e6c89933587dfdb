/**
 * docs/configuration.md is the one table of every variable (issue 12 item 5): checked against the
 * services' env.ts schemas, so a variable added, removed, moved between services or given another
 * default without the table changing fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_VARS, PARSE_ENV, ROOT, type Service, SERVICES } from './manifests.js';

interface Row {
  readonly variable: string;
  readonly services: Service[];
  readonly default: string;
}

function table(): Row[] {
  const text = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| `([A-Z0-9_]+)` \| ([a-z, ]+) \| ([^|]+) \|/.exec(line);
    if (m === null) continue;
    const services = m[2] === 'all' ? [...SERVICES] : ((m[2] as string).split(',').map((s) => s.trim()) as Service[]);
    for (const s of services) expect(SERVICES, `${m[1]}: unknown service "${s}"`).toContain(s);
    rows.push({ variable: m[1] as string, services, default: (m[3] as string).trim() });
  }
  return rows;
}

/** The smallest environment each service starts with (the scheduler needs a Redis and its API secrets). */
const BASE: Record<Service, Record<string, string>> = {
  scheduler: { REDIS_CLUSTER_NODES: '127.0.0.1:7000', GAMBIT_ADMIN_KEY: 'a'.repeat(32), GAMBIT_KEY_HMAC_SECRET: 'b'.repeat(32) },
  worker: {},
  estimator: {},
};

describe('docs/configuration.md against the services’ env.ts schemas', () => {
  const rows = table();

  it('lists every variable each service reads, for exactly the services that read it, once', () => {
    expect(rows.length).toBeGreaterThan(60);
    for (const service of SERVICES) {
      const documented = rows.filter((r) => r.services.includes(service)).map((r) => r.variable);
      expect(new Set(documented).size, `${service}: a variable documented twice`).toBe(documented.length);
      expect([...documented].sort(), service).toEqual([...ENV_VARS[service]].sort());
    }
  });

  it('documents the default each service really applies', () => {
    for (const service of SERVICES) {
      const parsed = PARSE_ENV[service](BASE[service]) as Record<string, unknown>;
      for (const r of rows.filter((x) => x.services.includes(service))) {
        if (r.variable in BASE[service] || r.default.includes('<')) continue;
        const actual = parsed[r.variable];
        if (r.default.startsWith('–')) expect(actual, `${service} ${r.variable}: documented without a default`).toBeUndefined();
        else expect(`\`${String(actual)}\``, `${service} ${r.variable}`).toBe(r.default);
      }
    }
  });
});
