/**
 * Issue 10 item 7 (M6 disclosure): admissibility takes the stricter of the node's and the tool's
 * own effects and disclosure, so a workflow that under-declares `http_get` (which discloses) or
 * `http_post` (irreversible) does not make it speculable; and the worker refuses a speculative
 * attempt of a disclosing tool for a tenant that does not allow disclosure (defence in depth:
 * a speculative job sent straight to the queue reaches no outside server).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILTIN_TOOL_DECLARATIONS, parseWorkflow, createPriceTable } from '@gambit/shared';
import { tenantKeys } from '@gambit/shared/redis';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withToolDeclarations } from '../../services/scheduler/src/runs.js';
import { createToolRegistry } from '../../services/worker/src/tools/index.js';
import { opQueues, readRecord, startWorker, submit, toolJob, waitFor } from '../worker/helpers.js';

describe('M6: the stricter of node and tool declarations (scheduler)', () => {
  it('an under-declared http_get becomes disclosing and http_post irreversible; a stricter node stays strict', () => {
    const wf = parseWorkflow(
      {
        name: 'under',
        nodes: [
          { id: 'g', kind: 'tool', tool: 'http_get', effects: 'none', discloses: false, args: { url: 'https://example.com' } },
          { id: 'p', kind: 'tool', tool: 'http_post', effects: 'idempotent', args: { url: 'https://example.com', body: '{}' } },
          { id: 'e', kind: 'tool', tool: 'echo', effects: 'staged', discloses: true, args: {} },
        ],
        edges: [],
      },
      { priceTable: createPriceTable() },
    );
    const eff = withToolDeclarations(wf);
    const byId = new Map(eff.nodes.map((n) => [n.id, n]));
    expect(byId.get('g')).toMatchObject({ effects: 'none', discloses: true });
    expect(byId.get('p')).toMatchObject({ effects: 'irreversible', discloses: true });
    expect(byId.get('e')).toMatchObject({ effects: 'staged', discloses: true });
  });

  it("the shared table matches the worker's built-in tools", async () => {
    const reg = await createToolRegistry({ kvLatencyMs: 0 });
    for (const name of reg.names()) {
      const t = reg.get(name);
      expect(BUILTIN_TOOL_DECLARATIONS[name], name).toEqual({ effects: t.effects, discloses: t.discloses === true });
    }
  });
});

describe('M6: the worker refuses a speculative disclosing tool unless the tenant allows it (real worker)', () => {
  const redisUrl = inject('redisUrl');
  let redis: Redis;
  let prefix: string;
  let queues: ReturnType<typeof opQueues>;
  let worker: ServiceProcess;
  let server: Server;
  let hits = 0;
  let url = '';

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    prefix = uniquePrefix('disc');
    queues = opQueues(redis, { prefix });
    // The server stands for an outside service: trusted so the address check lets it through.
    worker = await startWorker({ redisUrl, prefix, env: { OUTBOUND_TRUSTED_ORIGINS: `http://127.0.0.1:${port}` } });
    url = `http://127.0.0.1:${port}/guess`;
  }, 60_000);

  afterAll(async () => {
    await worker?.stop(5_000);
    await queues?.close();
    await redis?.quit();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('no disclosure allowed: the speculative http_get fails and nothing is sent; allowed: it runs', async () => {
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'closed', runId: 'r1', nodeId: 'g', attemptId: 'g.s1', kind: 'speculative', tool: 'http_get', args: { url }, effects: 'none' }));
    const refused = await waitFor(() => readRecord(redis, { prefix }, 'closed', 'r1', 'g.s1'), (r) => r.status === 'failed' || r.status === 'succeeded', 20_000, 'refused');
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatch(/does not allow disclosure/);
    expect(hits).toBe(0);
    await redis.hset(tenantKeys({ prefix }, 'open').config, 'allowDisclosure', '1');
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'open', runId: 'r2', nodeId: 'g', attemptId: 'g.s1', kind: 'speculative', tool: 'http_get', args: { url }, effects: 'none' }));
    const ran = await waitFor(() => readRecord(redis, { prefix }, 'open', 'r2', 'g.s1'), (r) => r.status === 'failed' || r.status === 'succeeded', 20_000, 'allowed');
    expect(ran.status, ran.error ?? '').toBe('succeeded');
    expect(hits).toBe(1);
    // An authoritative call of the same tool is not a disclosure of a guess: it runs.
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'closed', runId: 'r3', nodeId: 'g', attemptId: 'g.a1', tool: 'http_get', args: { url }, effects: 'none' }));
    const auth = await waitFor(() => readRecord(redis, { prefix }, 'closed', 'r3', 'g.a1'), (r) => r.status === 'failed' || r.status === 'succeeded', 20_000, 'authoritative');
    expect(auth.status).toBe('succeeded');
  });
});
