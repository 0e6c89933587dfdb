/**
 * W3C trace-context propagation through job payloads: the scheduler injects the current context
 * into a carrier stored in the job; the worker extracts it, so its spans join the run's trace.
 */
import { context, propagation, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const propagator = new W3CTraceContextPropagator();

export function injectContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, {
    set: (c, k, v) => {
      c[k] = v;
    },
  });
  return carrier;
}

export function extractContext(carrier: Record<string, string> | undefined): Context {
  if (carrier === undefined) return context.active();
  return propagator.extract(context.active(), carrier, {
    get: (c, k) => c[k],
    keys: (c) => Object.keys(c),
  });
}

// The global propagator also uses W3C, for any instrumentation that relies on it.
propagation.setGlobalPropagator(propagator);
