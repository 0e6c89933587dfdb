/**
 * Issue 10 item 1: `gambit keys create|list|revoke` against a real scheduler, with the operator
 * key from GAMBIT_ADMIN_KEY: the created key works, is listed (never shown again), and stops
 * working once revoked.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newTenant, type Stack, startStack } from '../e2e/harness.js';

const BIN = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

function gambit(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('gambit keys (CLI)', () => {
  let stack: Stack;
  let url: string;

  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'sec-cli', schedulers: 1, workers: 0 });
    url = stack.urls[0] as string;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('create, list, revoke; the key works until revoked; no operator key is a clear error', async () => {
    const tenant = newTenant('cli');
    const env = { GAMBIT_ADMIN_KEY: stack.adminKey };
    const created = await gambit(['keys', 'create', tenant, '--label', 'ci', '--url', url], env);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^gmb_[A-Za-z0-9_-]{43}$/);
    const use = () => fetch(`${url}/v1/tenants/${tenant}/config`, { headers: { authorization: `Bearer ${key}` } }).then(async (r) => {
      await r.text();
      return r.status;
    });
    expect(await use()).toBe(200);
    const listed = await gambit(['keys', 'list', tenant, '--url', url, '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const keys = (JSON.parse(listed.stdout) as { keys: Array<{ keyId: string; label: string; revokedAtMs: number | null }> }).keys;
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ label: 'ci', revokedAtMs: null });
    expect(listed.stdout).not.toContain(key);
    const revoked = await gambit(['keys', 'revoke', tenant, keys[0]?.keyId as string, '--url', url], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await use()).toBe(401);
    const noKey = await gambit(['keys', 'list', tenant, '--url', url], { GAMBIT_ADMIN_KEY: '' });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('GAMBIT_ADMIN_KEY');
    const wrongKey = await gambit(['keys', 'list', tenant, '--url', url], { GAMBIT_ADMIN_KEY: 'not-the-operator-key-but-long-enough' });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('401 UNAUTHENTICATED');
  });
});
