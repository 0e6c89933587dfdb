/**
 * Telemetry and ops-listener configuration from the standard OpenTelemetry variables
 * (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`,
 * `OTEL_EXPORTER_OTLP_*`) plus Gambit's own (`GAMBIT_TRACES_EXPORTER`, `GAMBIT_TRACES_FILE`,
 * `OPS_PORT`, `OPS_HOST`, the metric cardinality caps). The variables are zod shapes that each
 * service spreads into the schema of its `env.ts` (the only module that reads `process.env`), so
 * they are validated once at start with the rest and listed in docs/configuration.md;
 * `telemetryConfigFromEnv` turns the parsed values into the complete config `initTelemetry` takes.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';

const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
const protocol = z.enum(OTLP_PROTOCOLS, { message: 'must be http/protobuf or http/json (grpc is not supported)' });

/** `key=value,key=value`, values percent-encoded (the W3C Baggage-like form the spec uses). */
export function parseKeyValueList(text: string, variable: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const i = item.indexOf('=');
    if (i <= 0) throw new ValidationError([{ path: `env.${variable}`, message: `"${item}" is not key=value` }]);
    let value: string;
    try {
      value = decodeURIComponent(item.slice(i + 1).trim());
    } catch {
      throw new ValidationError([{ path: `env.${variable}`, message: `"${item}": bad percent-encoding` }]);
    }
    out[item.slice(0, i).trim()] = value;
  }
  return out;
}

const kvList = z.string().refine(
  (s) => s.split(',').every((p) => p.trim() === '' || p.indexOf('=') > 0),
  'must be a comma-separated list of key=value',
);

/** Ops listener (/metrics, /healthz, /readyz) of every service. */
export const OpsEnvShape = {
  /** 0 = a free port, logged as {"msg":"ops listening","port":N}. Deployments set 9464. */
  OPS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  OPS_HOST: z.string().min(1).default('127.0.0.1'),
};

/** Traces and metrics: the standard OTEL_* variables and Gambit's additions. */
export const TelemetryEnvShape = {
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_RESOURCE_ATTRIBUTES: kvList.optional(),
  /** Standard: `otlp`, `console` or `none`. */
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none']).optional(),
  /** Gambit's spelling, which also knows `file` (OTLP/JSON lines to GAMBIT_TRACES_FILE). */
  GAMBIT_TRACES_EXPORTER: z.enum(['otlp', 'console', 'file', 'none']).optional(),
  GAMBIT_TRACES_FILE: z.string().min(1).optional(),
  /** Push exporters of metrics besides the always-on Prometheus endpoint: `otlp`, `console`, `prometheus`, `none`, comma-separated. */
  OTEL_METRICS_EXPORTER: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''))
    .pipe(z.array(z.enum(['otlp', 'console', 'prometheus', 'none'])))
    .optional(),
  OTEL_METRIC_EXPORT_INTERVAL: z.coerce.number().int().positive().default(60_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol.default('http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol.optional(),
  OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: protocol.optional(),
  OTEL_EXPORTER_OTLP_HEADERS: kvList.optional(),
  /** Cardinality cap: distinct tenants labelled per process; the rest are counted as `_other`. */
  GAMBIT_METRICS_MAX_TENANTS: z.coerce.number().int().min(0).default(50),
};

const TelemetryEnvSchema = z.object(TelemetryEnvShape);
export type TelemetryEnv = z.infer<typeof TelemetryEnvSchema>;

export interface OtlpTarget {
  readonly url: string;
  readonly protocol: (typeof OTLP_PROTOCOLS)[number];
  readonly headers: Record<string, string>;
}

export interface TelemetryConfig {
  /** service.name (OTEL_SERVICE_NAME wins over the service's default). */
  readonly serviceName: string;
  /** Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES). */
  readonly resourceAttributes: Record<string, string>;
  readonly traces: { readonly exporter: 'otlp' | 'console' | 'file' | 'none'; readonly otlp?: OtlpTarget; readonly filePath?: string };
  readonly metrics: { readonly push: ReadonlyArray<'otlp' | 'console'>; readonly otlp?: OtlpTarget; readonly intervalMs: number; readonly maxTenants: number };
}

/** The specification's default collector endpoint (OTLP over HTTP). */
export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318';

function signalUrl(env: TelemetryEnv, specific: string | undefined, path: string): string | undefined {
  if (specific !== undefined) return specific;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) return undefined;
  return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/${path}`;
}

/** The complete telemetry config from parsed variables; `defaultServiceName` when OTEL_SERVICE_NAME is unset. */
export function telemetryConfigFromEnv(env: TelemetryEnv, defaultServiceName: string): TelemetryConfig {
  if (env.OTEL_TRACES_EXPORTER !== undefined && env.GAMBIT_TRACES_EXPORTER !== undefined && env.OTEL_TRACES_EXPORTER !== env.GAMBIT_TRACES_EXPORTER)
    throw new ValidationError([{ path: 'env.GAMBIT_TRACES_EXPORTER', message: `conflicts with OTEL_TRACES_EXPORTER=${env.OTEL_TRACES_EXPORTER}: set one` }]);
  const headers = env.OTEL_EXPORTER_OTLP_HEADERS === undefined ? {} : parseKeyValueList(env.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS');
  const tracesUrl = signalUrl(env, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, 'v1/traces');
  const metricsUrl = signalUrl(env, env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, 'v1/metrics');
  const tracesExporter = env.GAMBIT_TRACES_EXPORTER ?? env.OTEL_TRACES_EXPORTER ?? (tracesUrl !== undefined ? 'otlp' : 'none');
  if (tracesExporter === 'file' && env.GAMBIT_TRACES_FILE === undefined)
    throw new ValidationError([{ path: 'env.GAMBIT_TRACES_FILE', message: 'traces exporter "file" needs GAMBIT_TRACES_FILE' }]);
  const listed = env.OTEL_METRICS_EXPORTER ?? (metricsUrl !== undefined ? ['otlp'] : []);
  const push = [...new Set(listed.filter((e): e is 'otlp' | 'console' => e === 'otlp' || e === 'console'))];
  const target = (url: string | undefined, p: OtlpTarget['protocol'] | undefined): OtlpTarget | undefined =>
    url === undefined ? undefined : { url, protocol: p ?? env.OTEL_EXPORTER_OTLP_PROTOCOL, headers };
  // An `otlp` exporter without an endpoint sends to the specification's default collector.
  const tracesTarget = target(tracesUrl ?? `${DEFAULT_OTLP_ENDPOINT}/v1/traces`, env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL);
  const metricsTarget = target(metricsUrl ?? `${DEFAULT_OTLP_ENDPOINT}/v1/metrics`, env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL);
  return {
    serviceName: env.OTEL_SERVICE_NAME ?? defaultServiceName,
    resourceAttributes: env.OTEL_RESOURCE_ATTRIBUTES === undefined ? {} : parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES, 'OTEL_RESOURCE_ATTRIBUTES'),
    traces: {
      exporter: tracesExporter,
      ...(tracesExporter === 'otlp' && tracesTarget !== undefined ? { otlp: tracesTarget } : {}),
      ...(env.GAMBIT_TRACES_FILE !== undefined ? { filePath: env.GAMBIT_TRACES_FILE } : {}),
    },
    metrics: {
      push,
      ...(push.includes('otlp') && metricsTarget !== undefined ? { otlp: metricsTarget } : {}),
      intervalMs: env.OTEL_METRIC_EXPORT_INTERVAL,
      maxTenants: env.GAMBIT_METRICS_MAX_TENANTS,
    },
  };
}

/** A config that exports nothing (tests, tools). */
export function quietTelemetryConfig(serviceName: string): TelemetryConfig {
  return { serviceName, resourceAttributes: {}, traces: { exporter: 'none' }, metrics: { push: [], intervalMs: 60_000, maxTenants: 50 } };
}
