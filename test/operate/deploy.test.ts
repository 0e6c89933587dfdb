/**
 * The deployment files are correct by construction (issue 12 item 5): the Kubernetes manifests
 * validate against the Kubernetes schemas (kubernetes-models) and have what operating them needs
 * (probes on /healthz and /readyz, disruption budgets, a worker autoscaler on queue depth,
 * resources, restricted security contexts); every variable the manifests and the compose file
 * set is one the service reads and parses; the Dockerfile copies only paths that exist and its
 * entry points exist after a build; the compose stack mounts files that exist, Prometheus
 * scrapes the ops port and its alerts are the ones documented.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service as K8sService } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { containerEnv, containerVariables, type Doc, deploymentOf, ENV_VARS, k8sDocs, K8S_DIR, PARSE_ENV, ROOT, SERVICES, yamlFiles } from './manifests.js';

const MODELS: Record<string, new (data: Doc) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': K8sService,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

const OPS_PORT = 9464;
const docs = k8sDocs();
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests (infra/k8s)', () => {
  it('every object validates against the Kubernetes schema of its kind', () => {
    expect(docs.length).toBeGreaterThanOrEqual(14);
    for (const { file, doc } of docs) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no model here`).toBeDefined();
      expect(() => new (Model as NonNullable<typeof Model>)(doc).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`).not.toThrow();
      expect(doc.metadata?.namespace ?? (doc.kind === 'Namespace' ? 'gambit' : undefined), `${file}: ${doc.kind} namespace`).toBe('gambit');
    }
    // A broken manifest does fail the check (the validation is not vacuous).
    const broken = structuredClone(deploymentOf(docs, 'worker'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'ops';
    expect(() => new Deployment(broken).validate()).toThrow(/containerPort/);
  });

  it('kustomization.yaml lists every manifest file', () => {
    const k = parse(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect([...k.resources].sort()).toEqual(yamlFiles().filter((f) => f !== 'kustomization.yaml'));
  });

  it.each(SERVICES)('%s: probes on /healthz and /readyz at the ops port, resources, restricted security, a disruption budget', (service) => {
    const d = deploymentOf(docs, service);
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(c.args).toEqual([service]);
    const ops = c.ports.find((p: Doc) => p.name === 'ops');
    expect(ops.containerPort).toBe(OPS_PORT);
    expect(containerEnv(docs, service, 'p').OPS_PORT).toBe(String(OPS_PORT));
    expect(containerEnv(docs, service, 'p').OPS_HOST).toBe('0.0.0.0');
    for (const [probe, path] of [
      ['startupProbe', '/healthz'],
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const)
      expect(c[probe]?.httpGet, `${service} ${probe}`).toEqual({ path, port: 'ops' });
    expect(c.resources.requests.cpu).toBeDefined();
    expect(c.resources.requests.memory).toBeDefined();
    expect(c.resources.limits.cpu).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(d.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(OPS_PORT) });
    const labels = d.spec.template.metadata.labels;
    const pdbs = docs.filter((x) => x.doc.kind === 'PodDisruptionBudget' && matches(x.doc.spec.selector.matchLabels, labels));
    expect(pdbs.length, `${service} PodDisruptionBudget`).toBe(1);
    expect(matches(d.spec.selector.matchLabels, labels)).toBe(true);
  });

  it('the worker scales on queue depth (an External metric from the ops-queue gauge) with CPU as a floor', () => {
    const hpa = docs.find((x) => x.doc.kind === 'HorizontalPodAutoscaler')?.doc;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'gambit-worker' });
    const ext = hpa.spec.metrics.find((m: Doc) => m.type === 'External').external;
    expect(ext.metric).toEqual({ name: 'gambit_queue_jobs', selector: { matchLabels: { gambit_queue: 'ops', gambit_queue_state: 'waiting' } } });
    expect(hpa.spec.metrics.some((m: Doc) => m.type === 'Resource' && m.resource.name === 'cpu')).toBe(true);
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(deploymentOf(docs, 'worker').spec.replicas);
  });

  it.each(SERVICES)('%s: every variable the manifests set is one the service reads, and the service accepts the values', (service) => {
    for (const v of containerVariables(docs, service)) expect(ENV_VARS[service].has(v), `${service} reads ${v}`).toBe(true);
    expect(() => PARSE_ENV[service](containerEnv(docs, service, `gambit-${service}-0`))).not.toThrow();
  });

  it('shutdown grace: the pod waits longer than the service drains', () => {
    const grace = (s: 'scheduler' | 'worker' | 'estimator', v: string) => {
      const d = deploymentOf(docs, s);
      return { podSec: d.spec.template.spec.terminationGracePeriodSeconds, drainMs: Number(containerEnv(docs, s, 'p')[v]) };
    };
    for (const [s, v] of [
      ['scheduler', 'SHUTDOWN_GRACE_MS'],
      ['worker', 'WORKER_DRAIN_TIMEOUT_MS'],
      ['estimator', 'ESTIMATOR_DRAIN_TIMEOUT_MS'],
    ] as const) {
      const g = grace(s, v);
      expect(g.podSec * 1000, s).toBeGreaterThan(g.drainMs + 5_000);
    }
  });
});

describe('container image (Dockerfile)', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const copies = dockerfile
    .split('\n')
    .filter((l) => /^COPY\s/.test(l) && !l.includes('--from='))
    .map((l) => l.replace(/--chmod=\S+\s+/, '').trim().split(/\s+/).slice(1, -1));

  it('copies only paths that exist, and every workspace package a service or the CLI needs', () => {
    const sources = copies.flat();
    expect(sources.length).toBeGreaterThan(20);
    for (const src of sources) expect(existsSync(join(ROOT, src)), src).toBe(true);
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const src of sources) expect(ignored.includes(src) || ignored.includes(src.split('/')[0] ?? ''), `${src} is excluded by .dockerignore`).toBe(false);
    const needed = new Set<string>();
    const visit = (dir: string) => {
      if (needed.has(dir)) return;
      needed.add(dir);
      const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      for (const [name, spec] of Object.entries(pkg.dependencies ?? {}))
        if (spec.startsWith('workspace:')) visit(name.replace('@gambit/', /^@gambit\/(scheduler|worker|estimator)$/.test(name) ? 'services/' : 'packages/'));
    };
    for (const entry of ['services/scheduler', 'services/worker', 'services/estimator', 'packages/cli']) visit(entry);
    for (const dir of needed) {
      expect(sources, `${dir}/package.json copied`).toContain(`${dir}/package.json`);
      expect(sources, `${dir}/src copied`).toContain(`${dir}/src`);
      expect(dockerfile, `${dir}/dist in the runtime image`).toContain(`COPY --from=build /app/${dir}/dist ${dir}/dist`);
      if (existsSync(join(ROOT, dir, 'data'))) expect(dockerfile, `${dir}/data in the runtime image`).toContain(`COPY --from=build /app/${dir}/data ${dir}/data`);
    }
  });

  it('runs as a non-root user, and the entry points exist after a build', () => {
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/\nUSER node\n/);
    expect(dockerfile).toContain('pnpm install --frozen-lockfile --prod');
    const entry = readFileSync(join(ROOT, 'infra', 'docker', 'entrypoint.sh'), 'utf8');
    const paths = [...entry.matchAll(/\/app\/([\w/$.-]+\.js)/g)].map((m) => m[1] as string);
    const resolved = paths.flatMap((p) => (p.includes('$svc') ? SERVICES.map((s) => p.replace('$svc', s)) : [p]));
    expect(resolved).toEqual(expect.arrayContaining(['services/scheduler/dist/main.js', 'packages/cli/dist/bin.js']));
    for (const p of resolved) expect(existsSync(join(ROOT, p)), p).toBe(true);
  });
});

describe('compose stack (infra/compose.yaml) and its Prometheus, collector and Grafana files', () => {
  const compose = parse(readFileSync(join(ROOT, 'infra', 'compose.yaml'), 'utf8'), { merge: true }) as Doc;

  it('Redis with AOF, two schedulers, three workers, an estimator, a collector, Prometheus and Grafana', () => {
    expect(compose.services.redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(compose.services.scheduler.deploy.replicas).toBe(2);
    expect(compose.services.worker.deploy.replicas).toBe(3);
    for (const s of ['estimator', 'otel-collector', 'prometheus', 'grafana']) expect(compose.services[s], s).toBeDefined();
    for (const s of SERVICES) {
      expect(compose.services[s].command).toEqual([s]);
      expect(compose.services[s].healthcheck.test.join(' ')).toContain(`:${OPS_PORT}/readyz`);
    }
  });

  it.each(SERVICES)('%s: the variables compose sets are ones the service reads, with values it accepts', (service) => {
    const env = compose.services[service].environment as Record<string, string>;
    for (const v of Object.keys(env)) expect(ENV_VARS[service].has(v), `${service} reads ${v}`).toBe(true);
    expect(env.OPS_PORT).toBe(String(OPS_PORT));
    expect(() => PARSE_ENV[service](env)).not.toThrow();
  });

  it('mounted files exist; Prometheus scrapes the ops port of every service and loads the alerts', () => {
    for (const [name, s] of Object.entries(compose.services) as Array<[string, Doc]>)
      for (const v of (s.volumes ?? []) as string[]) {
        const src = v.split(':')[0] as string;
        if (src.startsWith('.')) expect(existsSync(join(ROOT, 'infra', src)), `${name}: ${src}`).toBe(true);
      }
    const prom = parse(readFileSync(join(ROOT, 'infra', 'prometheus', 'prometheus.yml'), 'utf8')) as Doc;
    const jobs = prom.scrape_configs.map((j: Doc) => [j.job_name, j.dns_sd_configs[0].names[0], j.dns_sd_configs[0].port]);
    expect(jobs).toEqual(SERVICES.map((s) => [`gambit-${s}`, s, OPS_PORT]));
    expect(prom.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const collector = parse(readFileSync(join(ROOT, 'infra', 'otel', 'collector.yaml'), 'utf8')) as Doc;
    expect(collector.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
    expect(collector.service.pipelines.traces.exporters).toContain('file/traces');
    const dash = JSON.parse(readFileSync(join(ROOT, 'infra', 'grafana', 'dashboards', 'gambit.json'), 'utf8')) as Doc;
    expect(dash.uid).toBe('gambit');
    expect(dash.panels.length).toBeGreaterThanOrEqual(12);
  });

  it('the alerts are the ones docs/operations.md documents, PromQL and all', () => {
    const rules = (parse(readFileSync(join(ROOT, 'infra', 'prometheus', 'alerts.yml'), 'utf8')) as Doc).groups.flatMap((g: Doc) => g.rules) as Array<{ alert: string; expr: string; for: string }>;
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const ops = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    for (const r of rules) {
      expect(ops, `${r.alert} documented`).toContain(r.alert);
      expect(ops, `${r.alert} PromQL documented`).toContain(r.expr.trim());
    }
  });
});
