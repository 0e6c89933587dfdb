/** Starting real estimator and ControlPlane child processes for the estimator tests. */
import { fileURLToPath } from 'node:url';
import { type ServiceProcess, startProcess } from '@gambit/testkit';

export const ESTIMATOR_MAIN = fileURLToPath(new URL('../../services/estimator/dist/main.js', import.meta.url));
export const CP_CHILD = fileURLToPath(new URL('./fixtures/control-plane-child.mjs', import.meta.url));

export function startEstimator(
  name: string,
  redisUrl: string,
  prefix: string,
  env: Record<string, string> = {},
): ServiceProcess {
  return startProcess(name, ESTIMATOR_MAIN, [], {
    REDIS_URL: redisUrl,
    GAMBIT_PREFIX: prefix,
    ESTIMATOR_ID: name,
    ESTIMATOR_HEARTBEAT_MS: '200',
    ESTIMATOR_CLAIM_INTERVAL_MS: '300',
    LOG_LEVEL: 'info',
    ...env,
  });
}

export async function estimatorReady(p: ServiceProcess): Promise<void> {
  await p.waitForLine((l) => l.includes('estimator ready'), 20_000);
}

export interface ChildLine {
  type: 'blocked' | 'kill' | 'ready';
  pid: number;
  t: number;
  blocked?: boolean;
  scope?: string | null;
  id?: string;
  version?: number;
}

export function parseLines(p: ServiceProcess): ChildLine[] {
  const out: ChildLine[] = [];
  for (const l of p.lines) {
    if (!l.startsWith('{')) continue;
    try {
      const o = JSON.parse(l) as ChildLine;
      if (o.type !== undefined) out.push(o);
    } catch {
      // not one of ours
    }
  }
  return out;
}

export function startControlPlaneChild(
  name: string,
  redisUrl: string,
  prefix: string,
  env: Record<string, string> = {},
): ServiceProcess {
  return startProcess(name, CP_CHILD, [], { REDIS_URL: redisUrl, GAMBIT_PREFIX: prefix, ...env });
}
