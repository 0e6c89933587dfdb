/**
 * Reading the deployment files (infra/k8s, infra/compose.yaml) the way the cluster would: every
 * YAML document of the Kubernetes manifests, and the environment a service's container gets
 * from them (ConfigMap and Secret through `envFrom`, then its own `env` with `$(VAR)` expansion
 * and the pod name for `fieldRef: metadata.name`). The deployment tests and the multi-host test
 * both start from this, so the multi-host test runs the services with the manifests' variables.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { EnvSchema as EstimatorEnvSchema, parseEnv as parseEstimatorEnv } from '../../services/estimator/dist/env.js';
import { loadEnv as parseSchedulerEnv, EnvSchema as SchedulerEnvSchema } from '../../services/scheduler/dist/env.js';
import { parseEnv as parseWorkerEnv, EnvSchema as WorkerEnvSchema } from '../../services/worker/dist/env.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const K8S_DIR = join(ROOT, 'infra', 'k8s');

export type Service = 'scheduler' | 'worker' | 'estimator';
export const SERVICES: readonly Service[] = ['scheduler', 'worker', 'estimator'];

/** Every variable each service's env.ts reads. */
export const ENV_VARS: Record<Service, ReadonlySet<string>> = {
  scheduler: new Set(Object.keys(SchedulerEnvSchema.shape)),
  worker: new Set(Object.keys(WorkerEnvSchema.shape)),
  estimator: new Set(Object.keys(EstimatorEnvSchema.shape)),
};

/** Parses an environment as the service would at start (throws naming the bad variable). */
export const PARSE_ENV: Record<Service, (env: Record<string, string>) => unknown> = {
  scheduler: (env) => parseSchedulerEnv(env),
  worker: (env) => parseWorkerEnv(env),
  estimator: (env) => parseEstimatorEnv(env),
};

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field
export type Doc = any;

export interface ManifestDoc {
  readonly file: string;
  readonly doc: Doc;
}

export function yamlFiles(dir = K8S_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

/** Every Kubernetes object in infra/k8s (kustomization.yaml is not one). */
export function k8sDocs(dir = K8S_DIR): ManifestDoc[] {
  const out: ManifestDoc[] = [];
  for (const file of yamlFiles(dir)) {
    if (file === 'kustomization.yaml') continue;
    for (const d of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      const doc = d.toJS() as Doc;
      if (doc !== null && doc !== undefined) out.push({ file, doc });
    }
  }
  return out;
}

export function find(docs: readonly ManifestDoc[], kind: string, name: string): Doc {
  const d = docs.find((x) => x.doc.kind === kind && x.doc.metadata?.name === name)?.doc;
  if (d === undefined) throw new Error(`no ${kind} ${name} in infra/k8s`);
  return d;
}

export function deploymentOf(docs: readonly ManifestDoc[], service: Service): Doc {
  return find(docs, 'Deployment', `gambit-${service}`);
}

/** Values of a ConfigMap's `data` or a Secret's `stringData`. */
function source(docs: readonly ManifestDoc[], ref: { configMapRef?: { name: string }; secretRef?: { name: string } }): Record<string, string> {
  if (ref.configMapRef !== undefined) return find(docs, 'ConfigMap', ref.configMapRef.name).data ?? {};
  if (ref.secretRef !== undefined) return find(docs, 'Secret', ref.secretRef.name).stringData ?? {};
  throw new Error(`unsupported envFrom ${JSON.stringify(ref)}`);
}

/**
 * The environment of the service's container, as the kubelet builds it. `podName` stands for
 * `fieldRef: metadata.name`; `overrides` replace values after that (addresses of a test network).
 */
export function containerEnv(docs: readonly ManifestDoc[], service: Service, podName: string, overrides: Record<string, string> = {}): Record<string, string> {
  const container = deploymentOf(docs, service).spec.template.spec.containers[0];
  const env: Record<string, string> = {};
  for (const ref of container.envFrom ?? []) Object.assign(env, source(docs, ref));
  for (const e of container.env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
    else if (e.valueFrom !== undefined) throw new Error(`unsupported valueFrom on ${service} ${e.name}`);
    else env[e.name] = String(e.value).replace(/\$\(([A-Z0-9_]+)\)/g, (_m, v: string) => env[v] ?? `$(${v})`);
  }
  return { ...env, ...overrides };
}

/** The variables a container sets, by where they come from (for the schema check). */
export function containerVariables(docs: readonly ManifestDoc[], service: Service): string[] {
  return Object.keys(containerEnv(docs, service, 'pod-0'));
}
