/**
 * The Gambit console (issue 12 item 2): a framework-free UI over the scheduler's API. What it
 * shows follows the API key it is given: the operator key sees every tenant, the classes (M5
 * posterior and credible interval, M9 stage, drift-detector state) with kill and revive, and the
 * queues (bull-board); a tenant key sees only its own tenant's runs and dollars.
 *
 * Pages (hash routes): #/ live dollars saved and wasted and latency saved per tenant and
 * workflow over time; #/runs runs with filters; #/runs/<tenant>/<runId> a run's timeline of every
 * attempt and every decision with its numbers (live over the run's event stream); #/classes.
 */

// biome-ignore lint/suspicious/noExplicitAny: API answers are rendered field by field
type Any = any;

const KEY_STORE = 'gambit.apiKey';
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const app = $('app');

let apiKey = sessionStorage.getItem(KEY_STORE) ?? '';
let operator = false;
let refresh: number | undefined;
let stream: AbortController | undefined;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function api<T = Any>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const parsed = text === '' ? {} : JSON.parse(text);
  if (!res.ok) throw new ApiError(res.status, parsed?.error?.code ?? 'ERROR', parsed?.error?.message ?? res.statusText);
  return parsed as T;
}

function h(tag: string, attrs: Record<string, string | number | undefined> = {}, ...children: Array<Node | string>): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

const usd = (v: number) => `$${v.toFixed(v !== 0 && Math.abs(v) < 0.01 ? 6 : 4)}`;
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const time = (ms: number | null) => (ms === null ? '–' : new Date(ms).toLocaleTimeString());
const pill = (s: string) => h('span', { class: `pill ${s}` }, s);

function table(head: string[], rows: Array<Array<Node | string>>, attrs: Record<string, string> = {}): HTMLElement {
  return h('table', attrs, h('thead', {}, h('tr', {}, ...head.map((c) => h('th', {}, c)))), h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
}

function stop(): void {
  if (refresh !== undefined) clearInterval(refresh);
  refresh = undefined;
  stream?.abort();
  stream = undefined;
}

function showError(err: unknown): void {
  app.replaceChildren(h('p', { class: 'error', id: 'error' }, err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err)));
}

// ---------------------------------------------------------------- sign-in

function signIn(message = ''): void {
  stop();
  $('nav').replaceChildren();
  $('who').textContent = '';
  const input = h('input', { id: 'api-key', type: 'password', placeholder: 'gmb_… or the operator key', size: 60 }) as HTMLInputElement;
  const form = h('form', { id: 'sign-in' }, h('h2', {}, 'Sign in with an API key'), input, ' ', h('button', { type: 'submit', id: 'sign-in-button' }, 'Open'), h('p', { class: 'error' }, message));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    apiKey = input.value.trim();
    sessionStorage.setItem(KEY_STORE, apiKey);
    void start();
  });
  app.replaceChildren(form);
}

async function start(): Promise<void> {
  try {
    const t = await api<{ tenants: string[] }>('GET', '/v1/tenants');
    operator = await api('GET', '/v1/kills?limit=1').then(
      () => true,
      (e: unknown) => (e instanceof ApiError && e.status === 403 ? false : Promise.reject(e)),
    );
    // bull-board is opened by navigation (no header): it reads the operator key from a cookie.
    // A tenant key clears it: the queues view must not outlive the operator's session.
    // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is not in every browser the console supports; this cookie is the one bull-board reads
    document.cookie = operator ? `gambit_key=${encodeURIComponent(apiKey)}; path=/admin/queues; SameSite=Strict` : 'gambit_key=; path=/admin/queues; max-age=0';
    $('who').textContent = operator ? 'operator' : `tenant ${t.tenants[0] ?? ''}`;
    $('who').dataset.role = operator ? 'operator' : 'tenant';
    const links: Array<[string, string]> = [
      ['#/', 'Overview'],
      ['#/runs', 'Runs'],
      ...(operator ? ([['#/classes', 'Classes']] as Array<[string, string]>) : []),
    ];
    $('nav').replaceChildren(
      ...links.map(([href, label]) => h('a', { href, id: `nav-${label.toLowerCase()}` }, label)),
      ...(operator ? [h('a', { href: '/admin/queues', id: 'nav-queues', target: '_blank' }, 'Queues')] : []),
      h('a', { href: '#/signout', id: 'nav-signout' }, 'Sign out'),
    );
    route();
  } catch (err) {
    signIn(err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err));
  }
}

// ---------------------------------------------------------------- overview

function chart(series: Any[], bucketSec: number): SVGElement {
  const W = 760;
  const H = 220;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  svg.setAttribute('id', 'savings-chart');
  const pts = series.flatMap((s) => s.points as Any[]);
  if (pts.length === 0) return svg;
  const t0 = Math.min(...pts.map((p) => p.t));
  const t1 = Math.max(...pts.map((p) => p.t)) + bucketSec * 1000;
  const lines: Array<{ label: string; color: string; values: Array<[number, number]> }> = [];
  const colors = ['#2f8f4e', '#b83232', '#3b6fd0', '#b7851b', '#7b52c7', '#138a8a'];
  series.forEach((s, i) => {
    let saved = 0;
    let wasted = 0;
    const sv: Array<[number, number]> = [[t0, 0]];
    const wv: Array<[number, number]> = [[t0, 0]];
    for (const p of s.points) {
      saved += p.savedUsd;
      wasted += p.wastedUsd;
      sv.push([p.t + bucketSec * 1000, saved]);
      wv.push([p.t + bucketSec * 1000, wasted]);
    }
    lines.push({ label: `${s.tenant}/${s.workflow} saved`, color: colors[(2 * i) % colors.length] as string, values: sv });
    lines.push({ label: `${s.tenant}/${s.workflow} wasted`, color: colors[(2 * i + 1) % colors.length] as string, values: wv });
  });
  const yMax = Math.max(1e-9, ...lines.flatMap((l) => l.values.map((v) => v[1])));
  const x = (t: number) => 50 + ((t - t0) / Math.max(1, t1 - t0)) * (W - 60);
  const y = (v: number) => H - 25 - (v / yMax) * (H - 45);
  for (const l of lines) {
    const path = document.createElementNS(ns, 'polyline');
    path.setAttribute('points', l.values.map(([t, v]) => `${x(t)},${y(v)}`).join(' '));
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', l.color);
    path.setAttribute('stroke-width', '2');
    const title = document.createElementNS(ns, 'title');
    title.textContent = l.label;
    path.append(title);
    svg.append(path);
  }
  const label = (tx: number, ty: number, s: string) => {
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', String(tx));
    t.setAttribute('y', String(ty));
    t.textContent = s;
    svg.append(t);
  };
  label(2, 15, usd(yMax));
  label(2, H - 25, '$0');
  label(50, H - 5, time(t0));
  label(W - 80, H - 5, time(t1));
  return svg;
}

async function overview(): Promise<void> {
  const card = h('div', { class: 'card' });
  app.replaceChildren(h('h2', {}, 'Dollars saved and wasted, latency saved (last hour, live)'), card);
  const draw = async () => {
    const s = await api('GET', '/v1/stats?bucketSec=60');
    const rows = (s.series as Any[]).map((x) => [
      x.tenant,
      x.workflow,
      String(x.total.hits),
      String(x.total.misses),
      String(x.total.cancelled),
      `${x.total.secondsSaved.toFixed(2)} s`,
      usd(x.total.savedUsd),
      usd(x.total.wastedUsd),
      usd(x.total.netUsd),
    ]);
    const tot = (k: string) => (s.series as Any[]).reduce((a, x) => a + x.total[k], 0);
    card.replaceChildren(
      h('div', { class: 'totals' }, h('div', {}, 'latency saved', h('b', { id: 'total-seconds' }, `${tot('secondsSaved').toFixed(2)} s`)), h('div', {}, 'saved (λ × s)', h('b', { id: 'total-saved' }, usd(tot('savedUsd')))), h('div', {}, 'wasted', h('b', { id: 'total-wasted' }, usd(tot('wastedUsd')))), h('div', {}, 'net value', h('b', {}, usd(tot('netUsd'))))),
      chart(s.series, s.bucketSec),
      table(['tenant', 'workflow', 'hits', 'misses', 'cancels', 'latency saved', 'saved', 'wasted', 'net'], rows, { id: 'stats-table' }),
    );
  };
  // A failed refresh (a scheduler restarting, a dropped connection) is shown on the page and the
  // next tick tries again: one bad response must not leave the live overview dead.
  const status = h('p', { class: 'error', id: 'overview-error' });
  app.append(status);
  const tick = () =>
    draw().then(
      () => {
        status.textContent = '';
      },
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401) return signIn(`${err.status} ${err.code}: ${err.message}`);
        status.textContent = `refresh failed, retrying: ${err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err)}`;
      },
    );
  refresh = window.setInterval(() => void tick(), 2000);
  await tick();
}

// ---------------------------------------------------------------- runs

async function runs(params: URLSearchParams): Promise<void> {
  const tenants = (await api<{ tenants: string[] }>('GET', '/v1/tenants')).tenants;
  const sel = (id: string, options: string[], value: string) => {
    const s = h('select', { id }, ...options.map((o) => h('option', { value: o }, o === '' ? '(any)' : o))) as HTMLSelectElement;
    s.value = value;
    return s;
  };
  const tenant = sel('filter-tenant', ['', ...tenants], params.get('tenant') ?? '');
  const status = sel('filter-status', ['', 'running', 'succeeded', 'failed', 'cancelled'], params.get('status') ?? '');
  const workflow = h('input', { id: 'filter-workflow', value: params.get('workflow') ?? '' }) as HTMLInputElement;
  const apply = h('button', { id: 'filter-apply' }, 'Filter');
  apply.addEventListener('click', () => {
    const q = new URLSearchParams();
    if (tenant.value !== '') q.set('tenant', tenant.value);
    if (status.value !== '') q.set('status', status.value);
    if (workflow.value !== '') q.set('workflow', workflow.value);
    location.hash = `#/runs?${q}`;
  });
  const body = h('tbody');
  const more = h('button', { id: 'runs-more' }, 'More');
  const list = h('table', { id: 'runs-table' }, h('thead', {}, h('tr', {}, ...['created', 'tenant', 'run', 'workflow', 'status'].map((c) => h('th', {}, c)))), body);
  app.replaceChildren(
    h('h2', {}, 'Runs'),
    h('div', { class: 'filters' }, h('label', {}, 'tenant', tenant), h('label', {}, 'status', status), h('label', {}, 'workflow', workflow), apply),
    list,
    more,
  );
  let cursor: string | null = null;
  const load = async () => {
    const q = new URLSearchParams(params);
    q.set('limit', '50');
    if (cursor !== null) q.set('cursor', cursor);
    const r = await api('GET', `/v1/runs?${q}`);
    for (const x of r.runs as Any[]) {
      body.append(
        h(
          'tr',
          { 'data-tenant': x.tenant, 'data-run': x.runId },
          h('td', {}, new Date(x.createdAtMs).toLocaleString()),
          h('td', {}, x.tenant),
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(x.tenant)}/${encodeURIComponent(x.runId)}` }, x.runId)),
          h('td', {}, x.workflow),
          h('td', {}, pill(x.status)),
        ),
      );
    }
    cursor = r.nextCursor;
    more.hidden = cursor === null;
  };
  more.addEventListener('click', () => void load().catch(showError));
  await load();
}

// ---------------------------------------------------------------- one run

/** An attempt's result: hit, miss or cancelled (speculative, from its outcome), else its status. */
function resultOf(a: Any, outcomes: Any[]): string {
  if (a.kind === 'speculative') {
    const o = outcomes.find((x) => String(x.outcomeId).includes(`:${a.attemptId}:`));
    if (o !== undefined && ['hit', 'miss', 'cancelled'].includes(o.kind)) return o.kind;
    if (a.status === 'cancelled') return 'cancelled';
  }
  return a.status;
}

function renderRun(v: Any): HTMLElement {
  const attempts = Object.entries<Any>(v.nodes).flatMap(([nodeId, n]) => (n.attempts as Any[]).map((a) => ({ ...a, nodeId })));
  const t0 = v.createdAtMs as number;
  const tEnd = Math.max(v.finishedAtMs ?? Date.now(), ...attempts.map((a) => a.finishedAtMs ?? Date.now()));
  const span = Math.max(1, tEnd - t0);
  const W = 900;
  const lanes = Object.keys(v.nodes).flatMap((nodeId) => {
    const as = attempts.filter((a) => a.nodeId === nodeId);
    return (as.length === 0 ? [[]] : as.map((a) => [a])).map((group) => ({ nodeId, group }));
  });
  const timeline = h('div', { class: 'timeline', id: 'timeline', style: `width:${W + 130}px` });
  for (const lane of lanes) {
    const row = h('div', { class: 'lane' }, h('span', { class: 'label' }, lane.nodeId));
    for (const a of lane.group as Any[]) {
      const start = a.startedAtMs ?? a.createdAtMs;
      const end = a.finishedAtMs ?? Date.now();
      const left = 120 + ((start - t0) / span) * W;
      const width = Math.max(3, ((end - start) / span) * W);
      const result = resultOf(a, v.outcomes);
      row.append(
        h(
          'div',
          {
            class: `bar ${a.kind}`,
            'data-attempt': a.attemptId,
            'data-kind': a.kind,
            'data-result': result,
            style: `left:${left}px;width:${width}px`,
            title: `${a.attemptId} ${a.kind} ${a.status} ${usd(a.costUsd)} ${((end - start) / 1000).toFixed(2)} s${Object.keys(a.assumed ?? {}).length > 0 ? ` assumed ${JSON.stringify(a.assumed)}` : ''}`,
          },
          `${a.kind === 'speculative' ? 'spec' : 'auth'} ${result} ${usd(a.costUsd)}`,
        ),
      );
    }
    timeline.append(row);
  }
  const attemptRows = attempts
    .sort((a, b) => a.createdAtMs - b.createdAtMs)
    .map((a) => [a.nodeId, a.attemptId, a.kind, pill(resultOf(a, v.outcomes)), JSON.stringify(a.assumed ?? {}), usd(a.costUsd), `${(((a.finishedAtMs ?? Date.now()) - (a.startedAtMs ?? a.createdAtMs)) / 1000).toFixed(2)} s`]);
  const decisionRows = (v.decisions as Any[]).map((d) => [
    d.decisionId.split(':').slice(1).join(':'),
    pill(d.action),
    d.reason,
    d.p.toFixed(3),
    `${d.deltaTSec.toFixed(2)} s`,
    usd(d.cSpecUsd),
    usd(d.cFailUsd),
    usd(d.evUsd),
    usd(d.thresholdUsd),
    d.stage,
  ]);
  return h(
    'div',
    { id: 'run', 'data-status': v.status },
    h('h2', {}, `Run ${v.tenant}/${v.runId} `, pill(v.status)),
    h('p', {}, `workflow ${v.workflow}; total ${usd(v.dollars.total.usd)}, speculative ${usd(v.dollars.speculative.usd)}, wasted ${usd(v.dollars.wasted.usd)}`),
    h('h3', {}, 'Timeline'),
    h('div', { class: 'legend' }, h('span', {}, 'blue: authoritative'), h('span', {}, 'green: speculative hit'), h('span', {}, 'red: miss'), h('span', {}, 'amber: cancelled')),
    timeline,
    h('h3', {}, 'Attempts'),
    table(['node', 'attempt', 'kind', 'result', 'assumed', 'cost', 'duration'], attemptRows, { id: 'attempts-table' }),
    h('h3', {}, 'Decisions'),
    table(['decision', 'action', 'reason', 'P', 'ΔT', 'C_spec', 'C_fail', 'EV', 'threshold', 'stage'], decisionRows, { id: 'decisions-table' }),
  );
}

async function runPage(tenant: string, runId: string): Promise<void> {
  const path = `/v1/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(runId)}`;
  const draw = async () => app.replaceChildren(renderRun(await api('GET', path)));
  await draw();
  // Live: redraw on each event of the run's stream (fetch, so the key goes in a header).
  stream = new AbortController();
  const signal = stream.signal;
  void (async () => {
    const res = await fetch(`${path}/events`, { headers: { authorization: `Bearer ${apiKey}`, accept: 'text/event-stream' }, signal });
    if (!res.ok || res.body === null) return;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let pending = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (dec.decode(value, { stream: true }).includes('event:') && !pending) {
        pending = true;
        setTimeout(() => {
          pending = false;
          if (!signal.aborted) void draw().catch(showError);
        }, 100);
      }
    }
    if (!signal.aborted) await draw();
  })().catch(() => undefined);
}

// ---------------------------------------------------------------- classes

function confirmAction(text: string, withExpiry: boolean): Promise<{ reason: string; expiresInSec?: number } | undefined> {
  const dlg = $<HTMLDialogElement>('confirm');
  $('confirm-text').textContent = text;
  const reason = $<HTMLInputElement>('confirm-reason');
  const expiry = $<HTMLInputElement>('confirm-expiry');
  reason.value = '';
  expiry.value = '';
  $('confirm-expiry-row').hidden = !withExpiry;
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener(
      'close',
      () => {
        if (dlg.returnValue !== 'ok' || reason.value.trim() === '') return resolve(undefined);
        resolve({ reason: reason.value.trim(), ...(withExpiry && expiry.value !== '' ? { expiresInSec: Number(expiry.value) } : {}) });
      },
      { once: true },
    );
  });
}

async function classes(): Promise<void> {
  const r = await api('GET', '/v1/classes?limit=500');
  const rows = (r.classes as Any[]).map((c) => {
    const ci = h('span', { class: 'ci', title: `90% credible interval [${c.credible.lo.toFixed(3)}, ${c.credible.hi.toFixed(3)}]` }, h('i', { style: `left:${c.credible.lo * 100}%;width:${(c.credible.hi - c.credible.lo) * 100}%` }), h('b', { style: `left:${c.pMean * 100}%` }));
    const killed = c.kill?.inForce === true;
    const btn = h('button', { class: killed ? 'revive' : 'kill', 'data-class': c.classId }, killed ? 'Revive' : 'Kill');
    btn.addEventListener('click', () =>
      void (async () => {
        const ok = await confirmAction(killed ? `Revive speculation of ${c.classId}?` : `Kill speculation of ${c.classId}? In-flight speculative attempts of this class are cancelled.`, !killed);
        if (ok === undefined) return;
        await api('POST', killed ? '/v1/revive' : '/v1/kill', { scope: 'class', classId: c.classId, ...ok });
        await classes();
      })().catch(showError),
    );
    return [
      c.classId,
      pill(c.stage),
      `${pct(c.pMean)} `,
      ci,
      `${c.hits}/${c.misses}`,
      `window ${c.detector.window.hits}/${c.detector.window.n}`,
      killed ? h('span', {}, pill('killed'), ` by ${c.kill.owner ?? '?'}: ${c.kill.reason}${c.kill.untilMs === null ? '' : ` until ${time(c.kill.untilMs)}`}`) : c.blocked.blocked ? `blocked (${c.blocked.scope})` : 'speculating',
      btn,
    ];
  });
  app.replaceChildren(h('h2', {}, 'Edge classes'), table(['class', 'stage', 'P (mean)', '90% interval', 'hits/misses', 'detector', 'kill', ''], rows, { id: 'classes-table' }));
}

// ---------------------------------------------------------------- routing

function route(): void {
  stop();
  const [path = '', query = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === `#/${parts[0] ?? ''}`);
  let page: Promise<void>;
  if (parts[0] === 'signout') {
    sessionStorage.removeItem(KEY_STORE);
    // biome-ignore lint/suspicious/noDocumentCookie: see signIn (the bull-board cookie)
    document.cookie = 'gambit_key=; path=/admin/queues; max-age=0';
    apiKey = '';
    signIn();
    return;
  }
  if (parts[0] === 'runs' && parts.length === 3) page = runPage(parts[1] as string, parts[2] as string);
  else if (parts[0] === 'runs') page = runs(new URLSearchParams(query));
  else if (parts[0] === 'classes') page = classes();
  else page = overview();
  page.catch(showError);
}

window.addEventListener('hashchange', route);
const fromUrl = new URLSearchParams(location.search).get('key');
if (fromUrl !== null) {
  apiKey = fromUrl;
  sessionStorage.setItem(KEY_STORE, apiKey);
  history.replaceState(null, '', location.pathname + location.hash);
}
if (apiKey === '') signIn();
else void start();
