/** Run routes (docs/api.md, Runs): submit, read, decisions, cancel, dial (M3). Tenant-scoped. */
import { CancelBodySchema, DialBodySchema, RunParamsSchema, SubmitRunBodySchema, UnavailableError } from '@gambit/shared';
import type { FastifyRequest } from 'fastify';
import type { GateTicket } from '../../tenant-gate.js';
import { tenantFor } from '../auth.js';
import type { App, HttpDeps } from '../deps.js';

/**
 * Issue 10 item 4: a submit made with a tenant key takes its tenant's place in the submit gate
 * (TenantGate) in its `onRequest` hook, before its body is read, parsed and validated. A
 * tenant's burst of hundreds of requests then waits as parked promises, and another tenant's
 * submit no longer waits behind the parsing and validation of all of them on the event loop.
 * (A submit made with the operator key names its tenant in the body, so it takes its place in
 * `RunService.submit`, after parsing.)
 */
interface Place {
  /** When the request arrived: its deadline (API_DEADLINE_MS) counts from here, parked time included. */
  readonly arrivedAtMs: number;
  ticket?: GateTicket;
  /** The handler is running the submit: an abort does not take its place away; the submit's end gives it back. */
  handling: boolean;
  /** The request is over (answered or aborted) before it held a place: leave as soon as it gets one. */
  over: boolean;
}
const places = new WeakMap<FastifyRequest, Place>();

function givePlaceBack(req: FastifyRequest): void {
  const p = places.get(req);
  if (p === undefined) return;
  p.over = true;
  p.ticket?.leave();
}

const notFound = (p: { tenant: string; runId: string }) => () => `run ${p.tenant}/${p.runId} not found`;

export function registerRunRoutes(app: App, deps: HttpDeps): void {
  app.post(
    '/v1/runs',
    {
      schema: { body: SubmitRunBodySchema },
      // Runs after the auth hook (route hooks follow the application's).
      onRequest: async (req) => {
        if (req.auth.kind !== 'tenant') return;
        const arrivedAtMs = Date.now();
        const entering = deps.runs.enterGate(req.auth.tenant);
        if (entering === undefined) return;
        const place: Place = { arrivedAtMs, handling: false, over: false };
        places.set(req, place);
        place.ticket = await entering;
        if (place.over || req.raw.socket?.destroyed === true) {
          place.ticket.leave();
          throw new UnavailableError(`tenant ${req.auth.tenant}: the client went away while its submit waited for its turn; nothing was stored`);
        }
      },
      // However the request was answered (before the handler ran, too: a body that fails
      // validation), its place is back once it is (idempotent).
      onResponse: async (req) => givePlaceBack(req),
      onRequestAbort: async (req) => {
        if (places.get(req)?.handling !== true) givePlaceBack(req);
      },
    },
    async (req, reply) => {
      const tenant = tenantFor(req, req.body.tenant, () => `tenant ${req.body.tenant} not found`);
      const place = places.get(req);
      if (place !== undefined) place.handling = true;
      try {
        // Issue 11 D3: the write is abandoned if the client goes away or the deadline passes first.
        const r = await deps.runs.submit(tenant, req.body, {
          deadlineMs: (place?.arrivedAtMs ?? Date.now()) + deps.apiDeadlineMs,
          abandoned: () => req.raw.socket?.destroyed === true,
          ...(place?.ticket === undefined ? {} : { ticket: place.ticket }),
        });
        return reply.status(r.created ? 201 : 200).send({ runId: r.runId, tenant });
      } finally {
        givePlaceBack(req);
      }
    },
  );
  app.get('/v1/runs/:tenant/:runId', { schema: { params: RunParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    return deps.runs.get(tenant, req.params.runId);
  });
  app.get('/v1/runs/:tenant/:runId/decisions', { schema: { params: RunParamsSchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    return { decisions: await deps.runs.decisions(tenant, req.params.runId) };
  });
  app.post('/v1/runs/:tenant/:runId/cancel', { schema: { params: RunParamsSchema, body: CancelBodySchema.optional() } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    return deps.runs.cancel(tenant, req.params.runId, req.body?.reason ?? 'user cancel');
  });
  app.put('/v1/runs/:tenant/:runId/dial', { schema: { params: RunParamsSchema, body: DialBodySchema } }, async (req) => {
    const tenant = tenantFor(req, req.params.tenant, notFound(req.params));
    await deps.runs.setDial(tenant, req.params.runId, req.body.alpha);
    return { alpha: req.body.alpha };
  });
}
