/**
 * Separate hosts without a Docker engine: Linux network namespaces joined by a bridge. Used by
 * the multi-host test (test/operate, issue 12 item 5) and the chaos campaign (packages/chaos,
 * issue 11), each with its own names and addresses.
 *
 * A "switch" namespace holds the bridge; each host namespace has one veth (`eth0`) into it with
 * its own address in `<subnet>.<net>.0/24` (one random /24 per network, so concurrent networks on
 * one machine do not collide), and the caller's own (root) namespace gets one veth too (`.254`,
 * the `gateway`) so it reaches every host. Every namespace name starts with `<prefix>-<id>-`,
 * every link name with the prefix's first three characters. A partition takes a host's
 * switch-side link down (the host reaches nothing, nothing reaches it) and `heal` brings it up.
 * `destroy()` deletes every namespace and link made (idempotent); it also runs on process exit.
 * Needs root and iproute2 (`infra/setup.sh` installs it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { type ServiceProcess, startCommand } from './process.js';

const run = promisify(execFile);

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
  }
}

export interface NetworkOptions {
  /** Namespace name prefix, 4 characters of [a-z0-9] (e.g. `w1op`); links use its first three. */
  readonly prefix: string;
  /** The first two octets of the addresses (e.g. `10.231`). */
  readonly subnet: string;
  /** Who needs the network, for the error when this machine cannot make one (e.g. `chaos`). */
  readonly user: string;
}

export interface Host {
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  /** The host's veth on the bridge (down while partitioned). */
  readonly switchLink: string;
}

export interface Network {
  readonly id: string;
  /** The caller's address on the bridge. */
  readonly gateway: string;
  readonly hosts: ReadonlyMap<string, Host>;
  /** The argv prefix that runs a command inside the host's namespace. */
  exec(host: string): string[];
  /** Runs `argv` inside the host's namespace with exactly `env` (plus PATH). */
  start(host: string, label: string, argv: readonly string[], env: Record<string, string>): ServiceProcess;
  /** Cuts the host off from everything. */
  partition(host: string): Promise<void>;
  /** Undoes `partition`. */
  heal(host: string): Promise<void>;
  /** This network's namespaces still present (empty after `destroy`). */
  namespaces(): Promise<string[]>;
  destroy(): Promise<void>;
}

/** Fails with a clear reason when this machine cannot make namespaces (not root, no `ip`). */
export function assertNetnsCapable(user: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${user}: separate hosts need root (network namespaces); CI runs as root`);
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error(`${user}: separate hosts need iproute2 (\`ip\`): run \`bash infra/setup.sh\``);
  }
}

/** Namespaces whose names start with `<prefix>-<id>-` (`<prefix>` alone: every network's). */
export async function namespacesOf(prefix: string, id?: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  const start = id === undefined ? `${prefix}-` : `${prefix}-${id}-`;
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(start));
}

export async function createNetwork(hostNames: readonly string[], opts: NetworkOptions): Promise<Network> {
  if (!/^[a-z0-9]{4}$/.test(opts.prefix)) throw new Error(`createNetwork: prefix must be 4 characters of [a-z0-9], got "${opts.prefix}"`);
  if (!/^\d{1,3}\.\d{1,3}$/.test(opts.subnet)) throw new Error(`createNetwork: subnet must be two octets like "10.231", got "${opts.subnet}"`);
  if (hostNames.length < 1 || hostNames.length > 99) throw new Error(`createNetwork: 1 to 99 hosts, got ${hostNames.length}`);
  assertNetnsCapable(opts.user);
  const id = randomBytes(2).toString('hex');
  const net = 1 + ((randomBytes(1)[0] as number) % 250);
  const lp = opts.prefix.slice(0, 3);
  const sw = `${opts.prefix}-${id}-sw`;
  const made: string[] = [];
  const rootLink = `${lp}${id}r`;
  let destroyed: Promise<void> | undefined;
  const destroySync = () => {
    for (const ns of made) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    try {
      execFileSync('ip', ['link', 'del', rootLink], { stdio: 'ignore' });
    } catch {
      // already gone (it goes with the switch namespace)
    }
  };
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      process.off('exit', destroySync);
      for (const ns of [...made].reverse()) await ip('netns', 'del', ns).catch(() => undefined);
      await ip('link', 'del', rootLink).catch(() => undefined);
    })();
    return destroyed;
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
      const ns = `${opts.prefix}-${id}-${name}`;
      const address = `${opts.subnet}.${net}.${k}`;
      await ip('netns', 'add', ns);
      made.push(ns);
      const a = `${lp}${id}${k}h`;
      const b = `${lp}${id}${k}s`;
      await ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      await ip('link', 'set', a, 'netns', ns);
      await ip('link', 'set', b, 'netns', sw);
      await ip('-n', ns, 'link', 'set', a, 'name', 'eth0');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', sw, 'link', 'set', b, 'master', 'br0');
      await ip('-n', sw, 'link', 'set', b, 'up');
      hosts.set(name, { name, ns, address, switchLink: b });
    }
    const peer = `${lp}${id}R`;
    await ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', peer);
    await ip('link', 'set', peer, 'netns', sw);
    await ip('-n', sw, 'link', 'set', peer, 'master', 'br0');
    await ip('-n', sw, 'link', 'set', peer, 'up');
    await ip('addr', 'add', `${opts.subnet}.${net}.254/24`, 'dev', rootLink);
    await ip('link', 'set', rootLink, 'up');
  } catch (err) {
    await destroy();
    throw err;
  }
  const host = (name: string): Host => {
    const h = hosts.get(name);
    if (h === undefined) throw new Error(`${opts.user}: no host ${name}`);
    return h;
  };
  const exec = (name: string): string[] => ['ip', 'netns', 'exec', host(name).ns];
  return {
    id,
    gateway: `${opts.subnet}.${net}.254`,
    hosts,
    exec,
    start(name, label, argv, env) {
      const [cmd, ...pre] = exec(name) as [string, ...string[]];
      return startCommand(label, cmd, [...pre, ...argv], { PATH: process.env.PATH, ...env });
    },
    partition: (name) => ip('-n', sw, 'link', 'set', host(name).switchLink, 'down'),
    heal: (name) => ip('-n', sw, 'link', 'set', host(name).switchLink, 'up'),
    namespaces: () => namespacesOf(opts.prefix, id),
    destroy,
  };
}
