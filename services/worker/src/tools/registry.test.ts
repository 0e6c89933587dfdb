/** M6: the tool registry and the built-ins' declared effects. */
import { AbortedError, silentLogger, UnknownToolError, ValidationError } from '@gambit/shared';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { OutboundGuard } from '../outbound.js';
import { DEFAULT_OUTBOUND } from './builtins.js';
import { createToolRegistry, type ToolContext } from './index.js';

function ctx(signal: AbortSignal = new AbortController().signal, idempotencyKey = 'gambit:t:r:n:1', tryNo = 1, redis?: Redis): ToolContext {
  return {
    signal,
    tenant: 't',
    runId: 'r',
    nodeId: 'n',
    attemptId: 'a',
    kind: 'speculative',
    idempotencyKey,
    tryNo,
    // The built-ins used here touch no Redis.
    redis: redis ?? (undefined as never),
    ks: { prefix: 'unit' },
    logger: silentLogger,
    timeScale: 1,
    nowMs: () => 0,
  };
}

describe('ToolRegistry (M6)', () => {
  it('declares each built-in with its effects class', async () => {
    const r = await createToolRegistry({ kvLatencyMs: 0 });
    expect(r.names()).toEqual(['charge_card', 'echo', 'http_get', 'http_post', 'kv_lookup', 'send_message', 'sleep']);
    expect(r.get('echo').effects).toBe('none');
    expect(r.get('kv_lookup').effects).toBe('idempotent');
    expect(r.get('send_message').effects).toBe('staged');
    expect(r.get('charge_card').effects).toBe('irreversible');
    // Issue 11 D2: the effectful built-ins apply their effect at most once per idempotency key.
    expect(r.get('charge_card').honoursIdempotencyKey).toBe(true);
    expect(r.get('http_post').effects).toBe('irreversible');
    expect(r.get('http_post').honoursIdempotencyKey).toBe(true);
    expect(r.get('http_get').discloses).toBe(true);
  });

  it('rejects unknown and duplicate tools', async () => {
    const r = await createToolRegistry({ kvLatencyMs: 0 });
    expect(() => r.get('nope')).toThrow(UnknownToolError);
    expect(() => r.register({ name: 'echo', effects: 'none', run: async () => ({ output: '' }) })).toThrow(ValidationError);
  });

  it('send_message returns its effect for staging instead of sending', async () => {
    const r = await createToolRegistry({ kvLatencyMs: 0 });
    const res = await r.get('send_message').run({ to: 'bob', body: 'hi' }, ctx());
    expect(res.effects).toEqual([{ type: 'message', to: 'bob', body: 'hi' }]);
    await expect(r.get('send_message').run({ to: 'bob' }, ctx())).rejects.toThrow(/args.body/);
  });

  it('sleep stops at once when its attempt is aborted', async () => {
    const r = await createToolRegistry({ kvLatencyMs: 0 });
    const ac = new AbortController();
    const started = Date.now();
    const p = r.get('sleep').run({ ms: 10_000 }, ctx(ac.signal));
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('http_post and http_get pass the idempotency key on as Idempotency-Key (issue 11 D2)', async () => {
    const seen: Array<{ method: string; key: string | undefined; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', key: req.headers['idempotency-key'] as string | undefined, body });
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // The HTTP tools read the tenant's outbound allow-list from Redis (none set here).
    const redis = new Redis(inject('redisUrl'));
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const url = `${origin}/orders`;
      // The outbound guard refuses loopback unless the operator trusts the origin (issue 10 item 6).
      const r = await createToolRegistry({ kvLatencyMs: 0, outbound: new OutboundGuard({ ...DEFAULT_OUTBOUND, trustedOrigins: new Set([origin]) }) });
      // Two tries of one execution carry one key; a re-execution (a new epoch) another.
      const first = await r.get('http_post').run({ url, body: '{"n":1}' }, ctx(undefined, 'gambit:t:r:pay:3', 1, redis));
      await r.get('http_post').run({ url, body: '{"n":1}' }, ctx(undefined, 'gambit:t:r:pay:3', 2, redis));
      await r.get('http_get').run({ url }, ctx(undefined, 'gambit:t:r:get:1', 1, redis));
      expect(JSON.parse(first.output)).toEqual({ status: 201, body: '{"ok":true}' });
      expect(seen).toEqual([
        { method: 'POST', key: 'gambit:t:r:pay:3', body: '{"n":1}' },
        { method: 'POST', key: 'gambit:t:r:pay:3', body: '{"n":1}' },
        { method: 'GET', key: 'gambit:t:r:get:1', body: '' },
      ]);
      await expect(r.get('http_post').run({ url: 'ftp://x/y', body: '' }, ctx(undefined, undefined, undefined, redis))).rejects.toThrow(/args.url/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    }
  });

  it('a tools module without register() is refused, naming the variable', async () => {
    await expect(createToolRegistry({ kvLatencyMs: 0, modulePath: new URL('./registry.ts', import.meta.url).pathname })).rejects.toThrow(/GAMBIT_TOOLS_MODULE/);
  });
});
