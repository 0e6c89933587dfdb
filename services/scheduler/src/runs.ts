/**
 * Run operations behind the HTTP API: submit (validate, plan, create, launch the roots), read a
 * run with its dollars, read its decisions, cancel, and turn the dial (M3). Nothing is stored
 * for invalid input: validation happens before the first write.
 */
import { randomBytes } from 'node:crypto';
import {
  type AttemptRecord,
  BUILTIN_TOOL_DECLARATIONS,
  effectiveDeclaration,
  type Clock,
  type Logger,
  NotFoundError,
  nanoToUsd,
  OutcomeSchema,
  parseWorkflow,
  type PriceTable,
  type SubmitRunBody,
  templateRefs,
  UnavailableError,
  ValidationError,
  type Workflow,
} from '@gambit/shared';
import {
  assertKeySafe,
  controlKeys,
  decodeDecision,
  encodeDecision,
  createRun,
  initialNodeState,
  type KeySpace,
  type NodeState,
  type RedisLike,
  runKeys,
  tenantKeys,
} from '@gambit/shared/redis';
import type { Metrics } from '@gambit/shared/telemetry';
import type { Tracer } from '@opentelemetry/api';
import type { SpeculationControl } from './engine/control.js';
import type { RunEngine } from './engine/engine.js';
import { planDecisions } from './engine/plan.js';
import { guessedUpstream } from './predictors/llm.js';
import { loadRun, newRunSnapshot, runLists, traceHeaderFields, workflowDefRef } from './engine/run-view.js';
import { traceRun } from './engine/tracing.js';
import type { GateTicket, TenantGate } from './tenant-gate.js';
import { admit, checkCaps, type LimitStore, type SpendLedger } from './limits.js';
import type { RetentionSource } from './retention.js';
import type { TenantStore } from './tenants.js';
import type { WorkflowRegistry } from './workflows.js';

export interface RunServiceDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly engine: RunEngine;
  readonly tenants: TenantStore;
  readonly workflows: WorkflowRegistry;
  /** Issue 10 items 4-5: per-tenant caps and admission. */
  readonly limits: LimitStore;
  /** Issue 10 item 3: the per-period spend cap's ledger. */
  readonly spend: SpendLedger;
  readonly control: SpeculationControl;
  readonly priceTable: PriceTable;
  readonly knownTools?: ReadonlySet<string>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tracer?: Tracer;
  readonly metrics?: Metrics;
  /** Retention of ended runs (see RunEngine); also bounds the tenant's run index. */
  readonly retention: RetentionSource;
  /** Issue 10 item 4: at most this many of one tenant's submits in progress in this process (SUBMIT_CONCURRENCY_PER_TENANT). */
  readonly submitGate?: TenantGate;
}

const noTurn = (): undefined => undefined;

export function newRunId(nowMs: number): string {
  return `r${nowMs.toString(36)}${randomBytes(5).toString('hex')}`;
}

/** Every `{{inputs.X}}` a template uses must be present in the inputs. */
function checkInputs(wf: Workflow, inputs: Record<string, unknown>): void {
  const issues: Array<{ path: string; message: string }> = [];
  wf.nodes.forEach((n) => {
    const templates = n.kind === 'llm' ? [n.prompt, n.system ?? '', n.simulate?.output ?? ''] : Object.values(n.args).filter((v): v is string => typeof v === 'string');
    for (const t of templates)
      for (const ref of templateRefs(t)) {
        if (!ref.startsWith('inputs.')) continue;
        const name = ref.slice('inputs.'.length).split('.')[0] ?? '';
        if (!Object.hasOwn(inputs, name)) issues.push({ path: `inputs.${name}`, message: `required by node "${n.id}"` });
      }
  });
  if (issues.length > 0) throw new ValidationError(issues);
}

/**
 * M6, issue 10 item 7: every tool node carries the stricter of its declared and its tool's own
 * effects and disclosure, so every admissibility check downstream (plan, runtime, timing) and
 * the worker's job see the effective ones.
 */
export function withToolDeclarations(wf: Workflow): Workflow {
  let changed = false;
  const nodes = wf.nodes.map((n) => {
    if (n.kind !== 'tool') return n;
    const eff = effectiveDeclaration(n, BUILTIN_TOOL_DECLARATIONS);
    if (eff.effects === n.effects && eff.discloses === n.discloses) return n;
    changed = true;
    return { ...n, effects: eff.effects, discloses: eff.discloses };
  });
  return changed ? { ...wf, nodes } : wf;
}

/** An `llm` predictor (M10) needs a provider, a model with known rates (its price) and a prompt. */
export function checkLlmPredictors(wf: Workflow, priceTable: PriceTable): void {
  const issues: Array<{ path: string; message: string }> = [];
  wf.edges.forEach((e, i) => {
    const p = e.predictor;
    if (p?.kind !== 'llm') return;
    const path = `workflow.edges[${i}].predictor`;
    if (p.provider === undefined) issues.push({ path: `${path}.provider`, message: 'an llm predictor needs a provider' });
    if (p.model === undefined) issues.push({ path: `${path}.model`, message: 'an llm predictor needs a model' });
    if (p.prompt === undefined) issues.push({ path: `${path}.prompt`, message: 'an llm predictor needs a prompt' });
    if (p.provider !== undefined && p.model !== undefined && priceTable.rates(p.provider, p.model) === undefined)
      issues.push({ path: `${path}.model`, message: `unknown model "${p.model}" for provider "${p.provider}": its guess cannot be priced` });
  });
  if (issues.length > 0) throw new ValidationError(issues);
}

/** How often one process trims a tenant's run index of entries past retention (issue 13 item 1). */
const TRIM_RUNS_EVERY_MS = 1_000;

export class RunService {
  /** Parsed registered workflows by their stored JSON (see resolveWorkflow). */
  private readonly registered = new Map<string, Workflow>();
  /** Tenants this process has added to the tenant set (which is only ever added to). */
  private readonly listedTenants = new Set<string>();
  /** When this process last trimmed each tenant's run index (see submitNow). */
  private readonly trimmedAt = new Map<string, number>();

  constructor(private readonly deps: RunServiceDeps) {}

  async resolveWorkflow(tenant: string, wf: SubmitRunBody['workflow']): Promise<Workflow> {
    const opts = { priceTable: this.deps.priceTable, ...(this.deps.knownTools === undefined ? {} : { knownTools: this.deps.knownTools }) };
    let parsed: Workflow;
    if (typeof wf === 'string') {
      const json = await this.deps.workflows.getJson(tenant, wf);
      if (json === undefined) throw new ValidationError([{ path: 'workflow', message: `no workflow "${wf}" is registered for tenant "${tenant}"` }]);
      // A registered definition is validated once per process per stored text (the price table
      // and known tools it is checked against are fixed for the process); re-registering changes
      // the text and so parses again.
      let cached = this.registered.get(json);
      if (cached === undefined) {
        cached = parseWorkflow(JSON.parse(json) as unknown, opts);
        if (this.registered.size > 1_000) this.registered.clear();
        this.registered.set(json, cached);
      }
      parsed = cached;
    } else parsed = parseWorkflow(wf, opts);
    checkLlmPredictors(parsed, this.deps.priceTable);
    return withToolDeclarations(parsed);
  }

  /** Submits a run for `tenant` (from the caller's API key; `body.tenant`, if any, was checked against it). */
  async submit(
    tenant: string,
    body: SubmitRunBody,
    opts: { deadlineMs?: number; abandoned?: () => boolean; ticket?: GateTicket } = {},
  ): Promise<{ runId: string; created: boolean }> {
    assertKeySafe('tenant', tenant);
    // Issue 10 item 4: a tenant's burst of submits goes through a few at a time, and pauses at
    // its turns while another tenant's submit is in progress, so that submit does not wait
    // behind the burst's steps on the event loop and the Redis connections. A caller that
    // already holds the tenant's place (`opts.ticket`, from `enterGate`) keeps it.
    if (opts.ticket !== undefined) return this.submitNow(tenant, body, opts, opts.ticket.turn);
    const gate = this.deps.submitGate;
    return gate === undefined ? this.submitNow(tenant, body, opts, noTurn) : gate.run(tenant, (turn) => this.submitNow(tenant, body, opts, turn));
  }

  /**
   * Issue 10 item 4: takes the tenant's place in the submit gate ahead of `submit` (the HTTP API
   * does so before a request's body is parsed); undefined when the service has no gate. The
   * caller must `leave()` the ticket when the request is over.
   */
  enterGate(tenant: string): Promise<GateTicket> | undefined {
    return this.deps.submitGate?.enter(tenant);
  }

  /**
   * `turn`: awaited between the steps of the submit; a tenant with a backlog of submits pauses
   * there while another tenant's submit is in progress (TenantGate).
   */
  private async submitNow(
    tenant: string,
    body: SubmitRunBody,
    opts: { deadlineMs?: number; abandoned?: () => boolean },
    turn: () => Promise<void> | undefined,
  ): Promise<{ runId: string; created: boolean }> {
    const wf = await this.resolveWorkflow(tenant, body.workflow);
    checkInputs(wf, body.inputs);
    const now = this.deps.clock.nowMs();
    // Issue 10 item 5: caps before anything is rendered, stored or sent (413/422 naming the cap).
    const limits = await this.deps.limits.get(tenant, now);
    checkCaps(wf, body.inputs, limits);
    // Issue 10 item 3: the period's booked spend below the tenant's spend cap (402 naming it).
    await this.deps.spend.check(tenant, limits, now);
    const runId = body.runId ?? newRunId(now);
    assertKeySafe('runId', runId);
    // Issue 10 item 4: per-tenant rate and in-flight admission (429 with Retry-After).
    await admit(this.deps.redis, this.deps.ks, tenant, runId, limits, now);
    await turn();
    const tenantCfg = await this.deps.tenants.get(tenant, now);
    const plan = await planDecisions({
      tenant,
      runId,
      workflow: wf,
      speculation: body.speculation,
      ...(body.alpha === undefined ? {} : { alpha: body.alpha }),
      ...(body.lambdaUsdPerSec === undefined ? {} : { lambdaUsdPerSec: body.lambdaUsdPerSec }),
      tenantCfg,
      control: this.deps.control,
      priceTable: this.deps.priceTable,
      nowMs: now,
    });
    const span = traceRun(this.deps.tracer, tenant, runId, wf.name);
    const wfJson = JSON.stringify(wf);
    const wfRef = workflowDefRef(wfJson);
    const header: Record<string, string | number> = {
      tenant,
      runId,
      workflowName: wf.name,
      // Issue 13 item 3: the definition by reference; stored once per tenant below.
      workflowRef: wfRef,
      inputs: JSON.stringify(body.inputs),
      status: 'running',
      speculation: body.speculation ? 1 : 0,
      createdAtMs: now,
      // Issue 10 item 4: the deadline of every operation whose node sets no `timeoutMs`.
      opTimeoutMs: limits.opTimeoutMs,
      ...(body.alpha === undefined ? {} : { alpha: body.alpha }),
      ...(body.lambdaUsdPerSec === undefined ? {} : { lambdaUsdPerSec: body.lambdaUsdPerSec }),
      // Issue 13 item 3: one short field per carrier entry (`trace:traceparent`, ...), not one JSON
      // field: every value stays under 64 bytes, so the header keeps Redis's compact hash encoding.
      ...(span.carrier === undefined ? {} : traceHeaderFields(span.carrier)),
    };
    const nodes: Record<string, NodeState> = {};
    for (const n of wf.nodes) nodes[n.id] = initialNodeState();
    // Before the run is written (createRun below waits for both): the recovery index (a run whose
    // creation is interrupted is swept, and dropped if absent) and the definition the run
    // references (HSETNX: a reference names one content). Issue 13 item 1: one round trip per
    // hash tag, sent together, instead of one per command.
    const { ttlMs } = await this.deps.retention.rules(tenant, now);
    const ctl = controlKeys(this.deps.ks);
    const tk = tenantKeys(this.deps.ks, tenant);
    const control = this.deps.redis.pipeline().zadd(ctl.active, now, `${tenant}:${runId}`);
    const newTenant = !this.listedTenants.has(tenant);
    if (newTenant) control.sadd(ctl.tenants, tenant);
    const own = this.deps.redis.pipeline().hsetnx(tk.workflowDefs, wfRef, wfJson).zadd(tk.runs, now, runId);
    // Index entries older than the retention point at runs whose keys have expired: trimmed at
    // most once a second per tenant by this process (issue 13 item 1: not on every submit).
    const trimmed = this.trimmedAt.get(tenant);
    if (ttlMs !== undefined && (trimmed === undefined || now - trimmed >= TRIM_RUNS_EVERY_MS || now < trimmed)) {
      own.zremrangebyscore(tk.runs, '-inf', now - 2 * ttlMs);
      if (this.trimmedAt.size > 10_000) this.trimmedAt.clear();
      this.trimmedAt.set(tenant, now);
    }
    for (const res of await Promise.all([control.exec(), own.exec()]))
      for (const [err] of res ?? []) if (err !== null) throw err;
    if (newTenant) {
      if (this.listedTenants.size > 10_000) this.listedTenants.clear();
      this.listedTenants.add(tenant);
    }
    await turn();
    // Issue 11 D3: a submit its client gave up on (disconnected, or past the request's deadline)
    // writes nothing; the deadline also travels into the write, so a script delayed in transit
    // (a stalled Redis) does not create the run when it finally runs.
    if (opts.abandoned?.() === true) throw new UnavailableError(`run ${tenant}/${runId}: the client went away before the run was written; nothing was stored`);
    if (opts.deadlineMs !== undefined && this.deps.clock.nowMs() > opts.deadlineMs)
      throw new UnavailableError(`run ${tenant}/${runId}: the request's deadline passed before the run was written; nothing was stored`);
    const created = await createRun(this.deps.redis, this.deps.ks, {
      tenant,
      runId,
      header,
      nodes,
      // Issue 13 item 3: stored in the compact encoding (decision-codec.ts).
      planDecisions: plan.map((d) => encodeDecision(d, { createdAtMs: now })),
      ...(opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs }),
    });
    if (created)
      for (const d of plan) {
        this.deps.log.info({ decision: d }, 'decision');
        this.deps.metrics?.decision(d);
      }
    try {
      await turn();
      // Issue 13 item 1: a run this call created starts from what it wrote (no read back).
      await this.deps.engine.reconcile(tenant, runId, created ? newRunSnapshot({ header, workflowRef: wfRef, workflowJson: wfJson, nodes }) : undefined);
    } catch (err) {
      // The run exists: answering an error would make the client submit it again. The recovery
      // sweep launches what this reconcile could not (docs/runtime.md).
      this.deps.log.warn({ err: String(err), tenant, runId }, 'reconciling a new run failed; the recovery sweep will launch it');
    } finally {
      span.end();
    }
    return { runId, created };
  }

  async get(tenant: string, runId: string): Promise<Record<string, unknown>> {
    const s = await loadRun(this.deps.redis, this.deps.ks, tenant, runId);
    if (s === undefined) throw new NotFoundError(`run ${tenant}/${runId} not found`);
    const { decisions, outcomes, effects } = await runLists(this.deps.redis, this.deps.ks, s);
    const byNode = new Map<string, AttemptRecord[]>();
    for (const a of s.attempts.values()) byNode.set(a.nodeId, [...(byNode.get(a.nodeId) ?? []), a]);
    let total = 0;
    let speculative = 0;
    let wasted = 0;
    let guesses = 0;
    for (const a of s.attempts.values()) {
      total += a.costNanoUsd;
      if (a.kind !== 'speculative') continue;
      speculative += a.costNanoUsd;
      const n = s.nodes.get(a.nodeId);
      const up = guessedUpstream(a.attemptId);
      if (up !== undefined) {
        // M10: a bought guess is sunk: guess spend whatever its speculation did, never waste.
        guesses += a.costNanoUsd;
        continue;
      }
      const used = n?.state === 'succeeded' && n.source === 'speculative' && n.auth === a.attemptId;
      const live = n?.spec?.a === a.attemptId;
      if (!used && !live) wasted += a.costNanoUsd;
    }
    const money = (nano: number) => ({ usd: nanoToUsd(nano), nanoUsd: nano });
    return {
      tenant,
      runId,
      workflow: s.workflow.name,
      status: s.header.status,
      reason: s.header.reason ?? null,
      speculation: s.header.speculation,
      alpha: s.header.alpha ?? null,
      createdAtMs: s.header.createdAtMs,
      finishedAtMs: s.header.finishedAtMs ?? null,
      nodes: Object.fromEntries(
        [...s.nodes.entries()].map(([id, n]) => [
          id,
          {
            // Issue 11 D2: a running node whose attempt waits for an operator shows it.
            state: n.state === 'running' && n.auth !== undefined && s.attempts.get(n.auth)?.status === 'needs_attention' ? 'needs_attention' : n.state,
            output: n.output ?? null,
            source: n.source ?? null,
            error: n.error ?? null,
            startedAtMs: n.startedAtMs ?? null,
            finishedAtMs: n.finishedAtMs ?? null,
            speculation: n.spec === undefined ? null : { attemptId: n.spec.a, decisionId: n.spec.d, assumed: n.spec.assumed, confirmed: n.spec.ok },
            attempts: (byNode.get(id) ?? [])
              .sort((a, b) => a.epoch - b.epoch)
              .map((a) => ({ ...a, costUsd: nanoToUsd(a.costNanoUsd) })),
          },
        ]),
      ),
      decisions: decisions.map((d) => decodeDecision(d, { tenant, workflow: s.workflow.name, runId, createdAtMs: s.header.createdAtMs })),
      outcomes: outcomes.map((o) => OutcomeSchema.parse(JSON.parse(o))),
      effects: effects.map((e) => JSON.parse(e) as unknown),
      // Issue 13 item 3: an ended run folded into its compact record; outputs as the tenant kept them.
      ...(s.compact === undefined ? {} : { compact: { outputsKept: s.compact.outputsKept, effectCount: s.compact.effectCount } }),
      dollars: { total: money(total), speculative: money(speculative), wasted: money(wasted), guesses: money(guesses) },
    };
  }

  async decisions(tenant: string, runId: string): Promise<unknown[]> {
    const s = await loadRun(this.deps.redis, this.deps.ks, tenant, runId);
    if (s === undefined) throw new NotFoundError(`run ${tenant}/${runId} not found`);
    return (await runLists(this.deps.redis, this.deps.ks, s)).decisions.map((d) => decodeDecision(d, { tenant, workflow: s.workflow.name, runId, createdAtMs: s.header.createdAtMs }));
  }

  async cancel(tenant: string, runId: string, reason: string): Promise<{ cancelled: boolean; status: string }> {
    const k = runKeys(this.deps.ks, tenant, runId);
    if ((await this.deps.redis.exists(k.run)) === 0) throw new NotFoundError(`run ${tenant}/${runId} not found`);
    const ended = await this.deps.engine.end(tenant, runId, 'cancelled', reason);
    await this.deps.engine.reconcile(tenant, runId);
    return { cancelled: ended, status: (await this.deps.redis.hget(k.run, 'status')) ?? 'unknown' };
  }

  /** M3: the run's α; the next decision reads it. */
  async setDial(tenant: string, runId: string, alpha: number): Promise<void> {
    const k = runKeys(this.deps.ks, tenant, runId);
    if ((await this.deps.redis.exists(k.run)) === 0) throw new NotFoundError(`run ${tenant}/${runId} not found`);
    await this.deps.redis.hset(k.run, 'alpha', String(alpha));
    // M8: live speculations are re-decided with the new α now, not at the run's next event.
    await this.deps.engine.reconcile(tenant, runId);
  }

  /**
   * M8: after a tenant's configuration changed (α, λ, budget), its active runs are reconciled
   * so that their live speculations are re-decided with the new numbers at once.
   */
  async reconcileTenant(tenant: string): Promise<number> {
    const members = await this.deps.redis.zrange(controlKeys(this.deps.ks).active, '0', '-1');
    let n = 0;
    for (const m of members) {
      if (!m.startsWith(`${tenant}:`)) continue;
      await this.deps.engine.reconcile(tenant, m.slice(tenant.length + 1));
      n++;
    }
    return n;
  }
}
