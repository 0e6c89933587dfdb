/**
 * Separate hosts without a Docker engine: Linux network namespaces joined by a bridge (issue 12
 * item 5). A "switch" namespace holds the bridge; each host namespace has one veth (`eth0`) into
 * it with its own address in 10.231.<net>.0/24, and the test's own (root) namespace gets one veth
 * too (.254) so the test can reach every host. Every name starts with `w1op`; `destroy()` deletes
 * every namespace and link it made (idempotent) and is also run on process exit. Needs root and
 * iproute2 (`infra/setup.sh` installs it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { type ServiceProcess, startCommand } from '@gambit/testkit';

const run = promisify(execFile);

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  }
}

export interface Host {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
}

export interface Network {
  readonly id: string;
  /** The test's address on the bridge. */
  readonly gateway: string;
  readonly hosts: ReadonlyMap<string, Host>;
  /** Runs `argv` inside the host's namespace with exactly `env` (plus PATH). */
  start(host: string, label: string, argv: readonly string[], env: Record<string, string>): ServiceProcess;
  destroy(): Promise<void>;
}

/** Fails with a clear reason when this machine cannot make namespaces (not root, no `ip`). */
export function assertNetnsCapable(): void {
  if (process.getuid?.() !== 0) throw new Error('the multi-host test needs root (network namespaces); CI runs as root');
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('the multi-host test needs iproute2 (`ip`): run `bash infra/setup.sh`');
  }
}

export async function createNetwork(hostNames: readonly string[]): Promise<Network> {
  assertNetnsCapable();
  const id = randomBytes(2).toString('hex');
  // A /24 per run, so concurrent runs on one machine do not collide.
  const net = 1 + (randomBytes(1)[0] as number) % 250;
  const sw = `w1op-${id}-sw`;
  const made: string[] = [];
  const rootLink = `w1o${id}r`;
  let destroyed: Promise<void> | undefined;
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      process.off('exit', destroySync);
      for (const ns of made.reverse()) await ip('netns', 'del', ns).catch(() => undefined);
      await ip('link', 'del', rootLink).catch(() => undefined);
    })();
    return destroyed;
  };
  const destroySync = () => {
    for (const ns of made) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', destroySync);
  const hosts = new Map<string, Host>();
  try {
    await ip('netns', 'add', sw);
    made.push(sw);
    await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', 'br0', 'up');
    await ip('-n', sw, 'link', 'set', 'lo', 'up');
    let k = 0;
    for (const name of hostNames) {
      k++;
      const ns = `w1op-${id}-${name}`;
      const address = `10.231.${net}.${k}`;
      await ip('netns', 'add', ns);
      made.push(ns);
      const a = `w1o${id}${k}h`;
      const b = `w1o${id}${k}s`;
      await ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      await ip('link', 'set', a, 'netns', ns);
      await ip('link', 'set', b, 'netns', sw);
      await ip('-n', ns, 'link', 'set', a, 'name', 'eth0');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', sw, 'link', 'set', b, 'master', 'br0');
      await ip('-n', sw, 'link', 'set', b, 'up');
      hosts.set(name, { name, ns, address });
    }
    const peer = `w1o${id}R`;
    await ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', peer);
    await ip('link', 'set', peer, 'netns', sw);
    await ip('-n', sw, 'link', 'set', peer, 'master', 'br0');
    await ip('-n', sw, 'link', 'set', peer, 'up');
    await ip('addr', 'add', `10.231.${net}.254/24`, 'dev', rootLink);
    await ip('link', 'set', rootLink, 'up');
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    id,
    gateway: `10.231.${net}.254`,
    hosts,
    start(host, label, argv, env) {
      const h = hosts.get(host);
      if (h === undefined) throw new Error(`no host ${host}`);
      return startCommand(label, 'ip', ['netns', 'exec', h.ns, ...argv], { PATH: process.env.PATH, ...env });
    },
    destroy,
  };
}

/** Namespaces of this run still present (for the cleanup assertion). */
export async function namespacesOf(id: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`w1op-${id}-`));
}
