/**
 * End-to-end harness: real scheduler and worker processes (services/*\/dist/main.js) on a real
 * Redis (a single server, or a local three-master Redis Cluster), talking only through Redis and
 * BullMQ, driven over the scheduler's HTTP API. `stop()` closes everything it opened.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ServiceProcess, startProcess, uniquePrefix } from '@gambit/testkit';
import { Cluster, Redis } from 'ioredis';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCHEDULER_MAIN = join(ROOT, 'services', 'scheduler', 'dist', 'main.js');
export const WORKER_MAIN = join(ROOT, 'services', 'worker', 'dist', 'main.js');

export type Backend = { kind: 'single'; url: string } | { kind: 'cluster'; nodes: ReadonlyArray<{ host: string; port: number }> };

export interface Stack {
  readonly prefix: string;
  /** The operator's API key (GAMBIT_ADMIN_KEY) of every scheduler of the stack. */
  readonly adminKey: string;
  readonly redis: Redis | Cluster;
  readonly schedulers: ServiceProcess[];
  readonly workers: ServiceProcess[];
  /** Base URLs of the schedulers' APIs. */
  readonly urls: string[];
  startWorker(name: string, extraEnv?: Record<string, string>): Promise<ServiceProcess>;
  startScheduler(name: string, extraEnv?: Record<string, string>): Promise<{ proc: ServiceProcess; url: string }>;
  stop(): Promise<void>;
}

function backendEnv(b: Backend): Record<string, string | undefined> {
  return b.kind === 'single'
    ? { REDIS_URL: b.url, REDIS_CLUSTER_NODES: undefined }
    : { REDIS_CLUSTER_NODES: b.nodes.map((n) => `${n.host}:${n.port}`).join(','), REDIS_URL: undefined };
}

export function redisClient(b: Backend): Redis | Cluster {
  return b.kind === 'single' ? new Redis(b.url) : new Cluster([...b.nodes]);
}

export async function startStack(
  backend: Backend,
  opts: { schedulers?: number; workers?: number; label?: string; schedulerEnv?: Record<string, string>; workerEnv?: Record<string, string> } = {},
): Promise<Stack> {
  const prefix = uniquePrefix(opts.label ?? 'e2e').replace(/:/g, '_');
  const common = { ...backendEnv(backend), GAMBIT_PREFIX: prefix, LOG_LEVEL: 'info', GAMBIT_TEST_ECHO: undefined };
  const secrets = newSecrets();
  const schedulers: ServiceProcess[] = [];
  const workers: ServiceProcess[] = [];
  const urls: string[] = [];
  const redis = redisClient(backend);
  const stack: Stack = {
    prefix,
    adminKey: secrets.GAMBIT_ADMIN_KEY,
    redis,
    schedulers,
    workers,
    urls,
    async startWorker(name, extraEnv = {}) {
      const w = startProcess(name, WORKER_MAIN, [], {
        ...common,
        WORKER_CONCURRENCY: '8',
        WORKER_SPEC_CONCURRENCY: '4',
        WORKER_LOCK_DURATION_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        WORKER_STATUS_CHECK_MS: '100',
        WORKER_PARTIAL_MIN_INTERVAL_MS: '20',
        WORKER_PARTIAL_MIN_DELTAS: '1',
        ...opts.workerEnv,
        ...extraEnv,
      });
      workers.push(w);
      await w.waitForLine((l) => l.includes('"worker ready"'), 30_000);
      return w;
    },
    async startScheduler(name, extraEnv = {}) {
      const s = startProcess(name, SCHEDULER_MAIN, [], {
        ...common,
        ...secrets,
        PORT: '0',
        REQUIRE_ESTIMATOR_HEARTBEAT: 'false',
        RECOVERY_SWEEP_MS: '500',
        RECOVERY_STALE_MS: '2000',
        ...opts.schedulerEnv,
        ...extraEnv,
      });
      schedulers.push(s);
      const line = await s.waitForLine((l) => l.includes('"scheduler listening"'), 30_000);
      const port = (JSON.parse(line) as { port: number }).port;
      const url = `http://127.0.0.1:${port}`;
      urls.push(url);
      adminKeys.set(url, secrets.GAMBIT_ADMIN_KEY);
      return { proc: s, url };
    },
    async stop() {
      await Promise.all([...schedulers, ...workers].map((p) => p.stop(8_000)));
      redis.disconnect();
    },
  };
  try {
    for (let i = 0; i < (opts.schedulers ?? 1); i++) await stack.startScheduler(`scheduler-${i}`);
    for (let i = 0; i < (opts.workers ?? 1); i++) await stack.startWorker(`worker-${i}`);
  } catch (err) {
    await stack.stop();
    throw err;
  }
  return stack;
}

export interface HttpResult<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
}

/** A fresh operator key and key-HMAC secret for a stack's schedulers (issue 10 item 1). */
export function newSecrets(): { GAMBIT_ADMIN_KEY: string; GAMBIT_KEY_HMAC_SECRET: string } {
  return { GAMBIT_ADMIN_KEY: `adm_${randomBytes(32).toString('base64url')}`, GAMBIT_KEY_HMAC_SECRET: randomBytes(32).toString('hex') };
}

/** Operator keys by scheduler URL (set by startStack, or by tests that start schedulers by hand). */
const adminKeys = new Map<string, string>();
/** Tenant keys by operator key and tenant, created on first use through the key API. */
const tenantKeyCache = new Map<string, Promise<string | undefined>>();

export function registerAdminKey(url: string, adminKey: string): void {
  adminKeys.set(url, adminKey);
}

/** Operator-only routes (docs/api.md): the harness calls them with the operator key. */
const OPERATOR_ROUTE = /^\/v1\/(admin\/|kill\b|revive\b|classes\b|kills\b|attention\b)|\/nodes\/[^/]+\/attention$/;

/** The tenant a request acts for, as a client names it: the path, the body or the query. */
function tenantOfRequest(path: string, body: unknown): string | undefined {
  const m = /^\/v1\/(?:runs|tenants)\/([^/?]+)/.exec(path);
  if (m !== null) return decodeURIComponent(m[1] as string);
  if (body !== null && typeof body === 'object' && typeof (body as { tenant?: unknown }).tenant === 'string') return (body as { tenant: string }).tenant;
  const q = /[?&]tenant=([^&]+)/.exec(path);
  return q === null ? undefined : decodeURIComponent(q[1] as string);
}

/** Creates (once per stack and tenant) a tenant API key with the operator key; undefined for an invalid tenant id. */
export function tenantKey(url: string, tenant: string): Promise<string | undefined> {
  const admin = adminKeys.get(url);
  if (admin === undefined) throw new Error(`no operator key registered for ${url}`);
  const cacheKey = `${admin}|${tenant}`;
  let p = tenantKeyCache.get(cacheKey);
  if (p === undefined) {
    p = (async () => {
      const res = await fetch(`${url}/v1/admin/tenants/${encodeURIComponent(tenant)}/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: '{}',
      });
      const b = (await res.json()) as { key?: string };
      if (res.status === 400 || res.status === 404) return undefined;
      if (res.status !== 201 || b.key === undefined) throw new Error(`creating a key for ${tenant} failed: ${res.status} ${JSON.stringify(b)}`);
      return b.key;
    })();
    p.catch(() => tenantKeyCache.delete(cacheKey));
    tenantKeyCache.set(cacheKey, p);
  }
  return p;
}

/**
 * Which key a request carries: `auth` as given (null = none), else the key a client of that
 * tenant would use (a tenant key for a request naming a tenant, created through the operator's
 * key API), else the operator key (operator routes, or a tenant id the key API refuses).
 */
async function keyFor(url: string, path: string, body: unknown, auth: string | null | undefined): Promise<string | undefined> {
  if (auth !== undefined) return auth ?? undefined;
  const admin = adminKeys.get(url);
  if (admin === undefined) return undefined;
  const tenant = tenantOfRequest(path, typeof body === 'string' ? undefined : body);
  if (tenant === undefined || OPERATOR_ROUTE.test(path)) return admin;
  return (await tenantKey(url, tenant)) ?? admin;
}

export async function http<T = Record<string, unknown>>(url: string, method: string, path: string, body?: unknown, opts: { auth?: string | null } = {}): Promise<HttpResult<T>> {
  const key = await keyFor(url, path, body, opts.auth);
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T };
}

// biome-ignore lint/suspicious/noExplicitAny: run views are checked field by field in tests
export type RunView = any;

/** Polls a run until it is no longer running (or the timeout passes). */
export async function waitForRun(url: string, tenant: string, runId: string, timeoutMs = 30_000): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http<RunView>(url, 'GET', `/v1/runs/${tenant}/${runId}`);
    if (r.status === 200 && r.body.status !== 'running') return r.body;
    if (Date.now() > deadline) throw new Error(`run ${tenant}/${runId} still ${r.body.status} after ${timeoutMs} ms: ${JSON.stringify(r.body).slice(0, 3000)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Polls until `pred` holds on the run view. */
export async function waitForView(url: string, tenant: string, runId: string, pred: (v: RunView) => boolean, timeoutMs = 30_000): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http<RunView>(url, 'GET', `/v1/runs/${tenant}/${runId}`);
    if (r.status === 200 && pred(r.body)) return r.body;
    if (Date.now() > deadline) throw new Error(`run ${tenant}/${runId}: condition not met in ${timeoutMs} ms: ${JSON.stringify(r.body).slice(0, 3000)}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

let tenantSeq = 0;
export function newTenant(label: string): string {
  tenantSeq++;
  return `${label}-${process.pid}-${tenantSeq}-${Math.random().toString(36).slice(2, 7)}`;
}

/** A tenant that speculates whenever the rule allows: online stage, latency first. */
export async function eagerTenant(url: string, label: string, extra: Record<string, unknown> = {}): Promise<string> {
  const tenant = newTenant(label);
  const r = await http(url, 'PUT', `/v1/tenants/${tenant}/config`, { alpha: 1, lambdaUsdPerSec: 10, initialStage: 'online', ...extra });
  if (r.status !== 200) throw new Error(`tenant config failed: ${JSON.stringify(r.body)}`);
  return tenant;
}

/** Submits a run for `body.tenant`; answers the API's reply (one place for the submit path). */
export function submitRun<T = Record<string, unknown>>(url: string, body: unknown): Promise<HttpResult<T>> {
  return http<T>(url, 'POST', '/v1/runs', body);
}

/** Reads a run's view (one place for the run path). */
export function getRun<T = RunView>(url: string, tenant: string, runId: string): Promise<HttpResult<T>> {
  return http<T>(url, 'GET', `/v1/runs/${tenant}/${runId}`);
}
