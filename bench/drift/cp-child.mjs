// Drift benchmark child (bench/drift/run.mjs): one ControlPlane, as a scheduler runs it. Prints
// one JSON line per new kill it learns of, with the wall-clock time it applied it
// (performance.timeOrigin + performance.now(), fractional ms; same machine as the parent).
import { ControlPlane, createLogger, systemClock } from '@gambit/shared';

const log = createLogger({ name: 'bench-cp', level: 'silent', destination: 2 });
const cp = new ControlPlane(process.env.REDIS_URL, { prefix: process.env.GAMBIT_PREFIX }, systemClock, log, {
  pollMs: Number(process.env.POLL_MS ?? 250),
});
const now = () => performance.timeOrigin + performance.now();
cp.onKill((e) => {
  // The verdict a scheduler would act on, taken at the moment the kill is applied.
  const v = cp.speculationBlocked('bench', e.id);
  process.stdout.write(`${JSON.stringify({ type: 'kill', t: now(), scope: e.scope, id: e.id, blocked: v.blocked })}\n`);
});
await cp.ready();
process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
process.on('SIGTERM', async () => {
  await cp.close();
  process.exit(0);
});
