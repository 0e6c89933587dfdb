// Hosts for the chaos campaign (issue 11): each process in its own Linux network namespace, all
// joined by a bridge in a "switch" namespace, the campaign's own (root) namespace on the bridge
// too, so it reaches every host. The shape of test/operate/netns.ts (the multi-host test), with
// this campaign's names and addresses: every namespace starts `w2ch`, links `w2c`, addresses are
// in 10.232.0.0/16 (one /24 per campaign). A partition takes a host's switch-side link down
// (the host can reach nothing, nothing reaches it) and heals by bringing it up again.
// `destroy()` deletes every namespace and link it made (idempotent); it also runs on exit.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function ip(...args) {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${err.stderr ?? String(err)}`);
  }
}

/** A clear error when this machine cannot make namespaces (not root, no `ip`). */
export function assertNetnsCapable() {
  if (process.getuid?.() !== 0) throw new Error('chaos: network partitions need root (network namespaces); CI runs as root');
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('chaos: network partitions need iproute2 (`ip`): run `bash infra/setup.sh`');
  }
}

/** Namespaces whose names start with `w2ch-<id>-` (all of them when id is undefined). */
export async function chaosNamespaces(id) {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(id === undefined ? 'w2ch' : `w2ch-${id}-`));
}

/**
 * @param {string[]} hostNames
 * @param {{ seedByte?: number }} [opts]
 */
export async function createNetwork(hostNames) {
  assertNetnsCapable();
  const id = randomBytes(2).toString('hex');
  const net = 1 + ((randomBytes(1)[0] ?? 0) % 250);
  const sw = `w2ch-${id}-sw`;
  const made = [];
  const rootLink = `w2c${id}r`;
  let destroyed;
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
      // already gone
    }
  };
  const destroy = () => {
    destroyed ??= (async () => {
      process.off('exit', destroySync);
      for (const ns of [...made].reverse()) await ip('netns', 'del', ns).catch(() => undefined);
      await ip('link', 'del', rootLink).catch(() => undefined);
    })();
    return destroyed;
  };
  process.on('exit', destroySync);
  const hosts = new Map();
  try {
    await ip('netns', 'add', sw);
    made.push(sw);
    await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', 'br0', 'up');
    await ip('-n', sw, 'link', 'set', 'lo', 'up');
    let k = 0;
    for (const name of hostNames) {
      k++;
      const ns = `w2ch-${id}-${name}`;
      const address = `10.232.${net}.${k}`;
      await ip('netns', 'add', ns);
      made.push(ns);
      const a = `w2c${id}${k}h`;
      const b = `w2c${id}${k}s`;
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
    const peer = `w2c${id}R`;
    await ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', peer);
    await ip('link', 'set', peer, 'netns', sw);
    await ip('-n', sw, 'link', 'set', peer, 'master', 'br0');
    await ip('-n', sw, 'link', 'set', peer, 'up');
    await ip('addr', 'add', `10.232.${net}.254/24`, 'dev', rootLink);
    await ip('link', 'set', rootLink, 'up');
  } catch (err) {
    await destroy();
    throw err;
  }
  const host = (name) => {
    const h = hosts.get(name);
    if (h === undefined) throw new Error(`chaos: no host ${name}`);
    return h;
  };
  return {
    id,
    gateway: `10.232.${net}.254`,
    hosts,
    /** argv prefix that runs a command inside the host's namespace. */
    exec: (name) => ['ip', 'netns', 'exec', host(name).ns],
    partition: (name) => ip('-n', sw, 'link', 'set', host(name).switchLink, 'down'),
    heal: (name) => ip('-n', sw, 'link', 'set', host(name).switchLink, 'up'),
    destroy,
  };
}
