/**
 * Commands that drive a live scheduler over its HTTP API (docs/api.md, docs/cli.md):
 *   gambit runs submit|get|watch|cancel|list, gambit classes, gambit kill, gambit revive.
 * The API's address comes from --url or GAMBIT_URL (default http://127.0.0.1:8080), the key
 * from --key or GAMBIT_API_KEY (sent as `Authorization: Bearer <key>`; a tenant's key, or the
 * operator key for operator commands). An error answer prints its status, code, message and the
 * fields it names, and exits 1.
 */
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ApiError } from '../demo/client.js';

interface ApiOptions {
  url?: string;
  key?: string;
  json?: boolean;
}

export function apiBase(o: ApiOptions): { url: string; headers: Record<string, string> } {
  const url = (o.url ?? process.env.GAMBIT_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const key = o.key ?? process.env.GAMBIT_API_KEY;
  return { url, headers: key === undefined || key === '' ? {} : { authorization: `Bearer ${key}` } };
}

export async function api<T = Record<string, unknown>>(o: ApiOptions, method: string, path: string, body?: unknown): Promise<T> {
  const { url, headers } = apiBase(o);
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const parsed = text === '' ? {} : (JSON.parse(text) as unknown);
  if (!res.ok) throw new ApiError(res.status, parsed);
  return parsed as T;
}

/** Reads a server-sent-events stream, calling `onEvent` per event, until the server closes it. */
export async function readEvents(o: ApiOptions, path: string, onEvent: (event: string, data: unknown) => void, signal?: AbortSignal): Promise<void> {
  const { url, headers } = apiBase(o);
  const res = await fetch(`${url}${path}`, { headers: { ...headers, accept: 'text/event-stream' }, ...(signal === undefined ? {} : { signal }) });
  if (!res.ok || res.body === null) {
    const text = await res.text();
    throw new ApiError(res.status, text === '' ? {} : JSON.parse(text));
  }
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(event, JSON.parse(data.join('\n')) as unknown);
    }
  }
}

function print(o: ApiOptions, value: unknown, text: () => string): void {
  process.stdout.write(o.json === true ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

const money = (usd: number) => `$${usd.toFixed(6)}`;

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
    return n;
  };
}

function withApi(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the scheduler API (default $GAMBIT_URL or http://127.0.0.1:8080)')
    .option('--key <key>', 'API key (default $GAMBIT_API_KEY)')
    .option('--json', 'print the API answer as JSON', false);
}

// biome-ignore lint/suspicious/noExplicitAny: API answers are printed field by field
type Any = any;

function describeEvent(event: string, d: Any): string {
  switch (event) {
    case 'run':
      return `run ${d.tenant}/${d.runId} (${d.workflow}) ${d.status}`;
    case 'node':
      return `node ${d.nodeId}: ${d.state}${d.source === null ? '' : ` (${d.source})`}`;
    case 'attempt':
      return `attempt ${d.attemptId} ${d.kind} ${d.status} ${money(d.costUsd ?? 0)}`;
    case 'decision':
      return `decision ${d.decisionId}: ${d.action} ${d.reason} P=${Number(d.p).toFixed(3)} ΔT=${Number(d.deltaTSec).toFixed(2)}s EV=${money(d.evUsd)} threshold=${money(d.thresholdUsd)}`;
    case 'outcome':
      return `outcome ${d.kind} on ${d.edgeClass}: saved ${Number(d.secondsSaved).toFixed(2)}s, wasted ${money(d.wasteUsd)}`;
    case 'end':
      return `end: ${d.status}${d.reason === null ? '' : ` (${d.reason})`}`;
    default:
      return `${event} ${JSON.stringify(d)}`;
  }
}

export function register(program: Command): void {
  const runs = program.command('runs').description('Submit, read, follow, cancel and list runs on a live scheduler');

  withApi(
    runs
      .command('submit')
      .description('Submit a run: a workflow file (JSON definition) or the name of a registered workflow')
      .argument('<workflow>', 'path to a workflow JSON file, or a registered workflow name')
      .requiredOption('--tenant <tenant>', 'tenant id')
      .option('--input <name=value...>', 'an input of the run (repeatable)')
      .option('--inputs <file>', 'a JSON file of inputs')
      .option('--alpha <α>', 'this run\'s dial α in [0, 1]', Number)
      .option('--no-speculation', 'run the plain schedule')
      .option('--watch', 'follow the run\'s events until it ends', false),
  ).action(async (workflow: string, o: ApiOptions & { tenant: string; input?: string[]; inputs?: string; alpha?: number; speculation: boolean; watch: boolean }) => {
    let wf: unknown = workflow;
    if (workflow.endsWith('.json') || workflow.includes('/')) wf = JSON.parse(await readFile(workflow, 'utf8')) as unknown;
    const inputs: Record<string, unknown> = o.inputs === undefined ? {} : (JSON.parse(await readFile(o.inputs, 'utf8')) as Record<string, unknown>);
    for (const kv of o.input ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new InvalidArgumentError(`--input ${kv}: use name=value`);
      inputs[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const r = await api<{ runId: string; tenant: string }>(o, 'POST', '/v1/runs', {
      tenant: o.tenant,
      workflow: wf,
      inputs,
      ...(o.alpha === undefined ? {} : { alpha: o.alpha }),
      ...(o.speculation ? {} : { speculation: false }),
    });
    print(o, r, () => r.runId);
    if (o.watch) await watch(o, r.tenant, r.runId);
  });

  withApi(runs.command('get').description('Show a run: status, nodes, attempts, dollars').argument('<tenant>').argument('<runId>')).action(
    async (tenant: string, runId: string, o: ApiOptions) => {
      const v = await api<Any>(o, 'GET', `/v1/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(runId)}`);
      print(o, v, () => {
        const lines = [`${v.tenant}/${v.runId} ${v.workflow}: ${v.status}${v.reason === null ? '' : ` (${v.reason})`}`];
        for (const [id, n] of Object.entries<Any>(v.nodes)) {
          lines.push(`  ${id}: ${n.state}${n.source === null ? '' : ` from ${n.source}`}`);
          for (const a of n.attempts) lines.push(`    ${a.attemptId} ${a.kind} ${a.status} ${money(a.costUsd)}`);
        }
        lines.push(`  dollars: total ${money(v.dollars.total.usd)}, speculative ${money(v.dollars.speculative.usd)}, wasted ${money(v.dollars.wasted.usd)}`);
        return lines.join('\n');
      });
    },
  );

  async function watch(o: ApiOptions, tenant: string, runId: string): Promise<void> {
    let status = 'running';
    await readEvents(o, `/v1/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(runId)}/events`, (event, d) => {
      if (event === 'end') status = (d as { status: string }).status;
      process.stdout.write(o.json === true ? `${JSON.stringify({ event, data: d })}\n` : `${describeEvent(event, d)}\n`);
    });
    if (status !== 'succeeded') process.exitCode = 3;
  }

  withApi(runs.command('watch').description('Follow a run\'s events (server-sent events) until it ends; exit 3 unless it succeeded').argument('<tenant>').argument('<runId>')).action(
    (tenant: string, runId: string, o: ApiOptions) => watch(o, tenant, runId),
  );

  withApi(runs.command('cancel').description('Cancel a run').argument('<tenant>').argument('<runId>').option('--reason <reason>', 'why')).action(
    async (tenant: string, runId: string, o: ApiOptions & { reason?: string }) => {
      const r = await api<Any>(o, 'POST', `/v1/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(runId)}/cancel`, o.reason === undefined ? {} : { reason: o.reason });
      print(o, r, () => (r.cancelled ? `cancelled (${r.status})` : `not cancelled: the run had already ended (${r.status})`));
    },
  );

  withApi(
    runs
      .command('list')
      .description('List runs, newest first')
      .option('--tenant <tenant>')
      .addOption(new Option('--status <status>').choices(['running', 'succeeded', 'failed', 'cancelled']))
      .option('--workflow <name>')
      .option('--limit <n>', 'page size', positiveInt('limit'), 20)
      .option('--cursor <cursor>', 'the nextCursor of a previous page'),
  ).action(async (o: ApiOptions & { tenant?: string; status?: string; workflow?: string; limit: number; cursor?: string }) => {
    const q = new URLSearchParams({ limit: String(o.limit) });
    for (const k of ['tenant', 'status', 'workflow', 'cursor'] as const) if (o[k] !== undefined) q.set(k, o[k] as string);
    const r = await api<Any>(o, 'GET', `/v1/runs?${q}`);
    print(o, r, () =>
      [...r.runs.map((x: Any) => `${new Date(x.createdAtMs).toISOString()} ${x.tenant}/${x.runId} ${x.workflow} ${x.status}`), ...(r.nextCursor === null ? [] : [`next: --cursor ${r.nextCursor}`])].join('\n'),
    );
  });

  withApi(
    program
      .command('classes')
      .description('List edge classes: stage, posterior and credible interval, kill')
      .option('--tenant <tenant>')
      .addOption(new Option('--stage <stage>').choices(['shadow', 'canary', 'online', 'killed']))
      .option('--limit <n>', 'page size', positiveInt('limit'), 50)
      .option('--cursor <cursor>', 'the nextCursor of a previous page'),
  ).action(async (o: ApiOptions & { tenant?: string; stage?: string; limit: number; cursor?: string }) => {
    const q = new URLSearchParams({ limit: String(o.limit) });
    for (const k of ['tenant', 'stage', 'cursor'] as const) if (o[k] !== undefined) q.set(k, o[k] as string);
    const r = await api<Any>(o, 'GET', `/v1/classes?${q}`);
    print(o, r, () =>
      [
        ...r.classes.map(
          (c: Any) =>
            `${c.classId}  ${c.stage}  P=${c.pMean.toFixed(3)} [${c.credible.lo.toFixed(3)}, ${c.credible.hi.toFixed(3)}]  hits ${c.hits} misses ${c.misses}${c.kill === null ? '' : `  KILLED by ${c.kill.owner ?? '?'}: ${c.kill.reason}`}`,
        ),
        ...(r.nextCursor === null ? [] : [`next: --cursor ${r.nextCursor}`]),
      ].join('\n'),
    );
  });

  const scopeOptions = (cmd: Command) =>
    withApi(cmd.option('--class <classId>', 'an edge class (scope class)').option('--tenant <tenant>', 'a tenant (scope tenant)').option('--global', 'everything', false).requiredOption('--reason <reason>', 'why (recorded)'));
  const bodyOf = (o: { class?: string; tenant?: string; global: boolean; reason: string }) => {
    const n = [o.class !== undefined, o.tenant !== undefined, o.global].filter(Boolean).length;
    if (n !== 1) throw new InvalidArgumentError('give exactly one of --class, --tenant, --global');
    if (o.global) return { scope: 'global', reason: o.reason };
    if (o.tenant !== undefined) return { scope: 'tenant', tenant: o.tenant, reason: o.reason };
    return { scope: 'class', classId: o.class, reason: o.reason };
  };

  scopeOptions(program.command('kill').description('Stop speculation of a class, a tenant or everything (operator)'))
    .option('--owner <name>', 'who is killing (recorded with the kill)')
    .option('--expires <seconds>', 'the kill lapses after this many seconds (default: until revived)', positiveInt('expires'))
    .action(async (o: ApiOptions & { class?: string; tenant?: string; global: boolean; reason: string; owner?: string; expires?: number }) => {
      const r = await api<Any>(o, 'POST', '/v1/kill', { ...bodyOf(o), ...(o.owner === undefined ? {} : { owner: o.owner }), ...(o.expires === undefined ? {} : { expiresInSec: o.expires }) });
      print(o, r, () => `killed (version ${r.version})${r.kill?.untilMs ? ` until ${new Date(r.kill.untilMs).toISOString()}` : ', until revived'}`);
    });

  scopeOptions(program.command('revive').description('Let speculation of a class, a tenant or everything resume (operator)')).action(
    async (o: ApiOptions & { class?: string; tenant?: string; global: boolean; reason: string }) => {
      const r = await api<Any>(o, 'POST', '/v1/revive', bodyOf(o));
      print(o, r, () => `revived (version ${r.version})`);
    },
  );
}
