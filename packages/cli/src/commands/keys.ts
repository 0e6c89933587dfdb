/**
 * `gambit keys create|list|revoke` (issue 10 item 1): tenant API keys, managed with the operator
 * key through the scheduler's key API (docs/security.md). The scheduler's URL comes from `--url`
 * or GAMBIT_URL (default http://127.0.0.1:8080), the operator key from GAMBIT_ADMIN_KEY (never a
 * flag, so it does not land in shell history or `ps`). A created key is printed once.
 */
import { ValidationError } from '@gambit/shared';
import type { Command } from 'commander';
import { SchedulerClient } from '../demo/client.js';

interface Flags {
  url?: string;
  json: boolean;
}

function client(flags: Flags): SchedulerClient {
  const key = process.env.GAMBIT_ADMIN_KEY;
  if (key === undefined || key === '') throw new ValidationError([{ path: 'GAMBIT_ADMIN_KEY', message: 'set it to the operator key the scheduler was started with' }]);
  const url = flags.url ?? process.env.GAMBIT_URL ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/[^\s]+$/.test(url)) throw new ValidationError([{ path: '--url', message: `must be an http(s) URL, got "${url}"` }]);
  return new SchedulerClient(url.replace(/\/+$/, ''), key);
}

const path = (tenant: string, rest = '') => `/v1/admin/tenants/${encodeURIComponent(tenant)}/keys${rest}`;

export function register(program: Command): void {
  const keys = program.command('keys').description('tenant API keys (operator; needs GAMBIT_ADMIN_KEY)');
  keys
    .command('create <tenant>')
    .description('create an API key for a tenant; the key is printed once')
    .option('--label <text>', 'a note stored with the key')
    .option('--url <url>', 'scheduler base URL (default GAMBIT_URL or http://127.0.0.1:8080)')
    .option('--json', 'print the answer as JSON', false)
    .action(async (tenant: string, flags: Flags & { label?: string }) => {
      const r = await client(flags).request<{ key: string; keyId: string; tenant: string }>('POST', path(tenant), flags.label === undefined ? {} : { label: flags.label });
      if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`${r.key}\n`);
      if (!flags.json) process.stderr.write(`key ${r.keyId} for tenant ${r.tenant}: shown once, store it now. Use it as: Authorization: Bearer <key>\n`);
    });
  keys
    .command('list <tenant>')
    .description("list a tenant's keys (ids, creation and revocation times; never the keys)")
    .option('--url <url>', 'scheduler base URL')
    .option('--json', 'print the answer as JSON', false)
    .action(async (tenant: string, flags: Flags) => {
      const r = await client(flags).request<{ keys: Array<{ keyId: string; createdAtMs: number; revokedAtMs: number | null; label: string | null }> }>('GET', path(tenant));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      for (const k of r.keys)
        process.stdout.write(
          `${k.keyId}  created ${new Date(k.createdAtMs).toISOString()}  ${k.revokedAtMs === null ? 'active ' : `revoked ${new Date(k.revokedAtMs).toISOString()}`}  ${k.label ?? ''}\n`,
        );
    });
  keys
    .command('revoke <tenant> <keyId>')
    .description('revoke a key: it stops working at once (within 1 s on every scheduler)')
    .option('--url <url>', 'scheduler base URL')
    .option('--json', 'print the answer as JSON', false)
    .action(async (tenant: string, keyId: string, flags: Flags) => {
      const r = await client(flags).request<{ keyId: string; revokedAtMs: number }>('DELETE', path(tenant, `/${encodeURIComponent(keyId)}`));
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `revoked ${r.keyId}\n`);
    });
}
