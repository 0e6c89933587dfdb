/**
 * Starts real `redis-server` processes for tests, demos and benchmarks: a single server on a
 * free port, or a local three-master Redis Cluster. Nothing here is a mock; the servers keep no
 * data on disk and are killed by `stop()` (idempotent).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface RedisHandle {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface RedisClusterHandle {
  /** One seed node per master, e.g. [{host, port}] */
  readonly nodes: ReadonlyArray<{ host: string; port: number }>;
  stop(): Promise<void>;
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not get a free port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

export function redisServerBinary(): string {
  return process.env.REDIS_SERVER_BIN ?? 'redis-server';
}

async function waitForPing(port: number, proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${proc.exitCode}`);
    try {
      const { stdout } = await execFileAsync('redis-cli', ['-p', String(port), 'ping']);
      if (stdout.trim() === 'PONG') return;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms: ${String(lastErr)}`);
}

function killer(proc: ChildProcess, dir?: string): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () => {
    stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (proc.exitCode !== null || proc.signalCode !== null) return done();
      proc.once('exit', done);
      proc.kill('SIGKILL');
    });
    return stopped;
  };
}

/** Starts one redis-server on a free port (or `port`), with no persistence. */
export async function startRedis(opts: { port?: number; extraArgs?: string[] } = {}): Promise<RedisHandle> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'gambit-redis-'));
  const proc = spawn(
    redisServerBinary(),
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.extraArgs ?? [])],
    { stdio: 'ignore' },
  );
  const stop = killer(proc, dir);
  try {
    await waitForPing(port, proc);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, host: '127.0.0.1', port, stop };
}

/** Starts a local three-master Redis Cluster (no replicas) with `redis-cli --cluster create`. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const started: Array<{ port: number; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    await Promise.all(started.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'gambit-redis-cluster-'));
      const proc = spawn(
        redisServerBinary(),
        [
          '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000',
        ],
        { stdio: 'ignore' },
      );
      const stop = killer(proc, dir);
      started.push({ port, stop });
      await waitForPing(port, proc);
    }
    const addrs = started.map((s) => `127.0.0.1:${s.port}`);
    await execFileAsync('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes']);
    // Wait until every node reports the cluster as ok.
    const deadline = Date.now() + 15_000;
    for (const s of started) {
      for (;;) {
        const { stdout } = await execFileAsync('redis-cli', ['-p', String(s.port), 'cluster', 'info']);
        if (stdout.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error('Redis Cluster did not reach cluster_state:ok');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { nodes: started.map((s) => ({ host: '127.0.0.1', port: s.port })), stop: stopAll };
}
