// Types of the chaos package's API (api.mjs), for the TypeScript tests.
export interface Violation {
  invariant: string;
  runId?: string;
  detail: string;
}
// biome-ignore lint/suspicious/noExplicitAny: raw JSON read from Redis, checked field by field
type Json = any;
export interface RunHistory {
  runId: string;
  header: Record<string, string>;
  nodes: Record<string, Json>;
  attempts: Json[];
  effects: Json[];
  outcomes: Json[];
  view: Json;
}
export interface History {
  tenant: string;
  runs: RunHistory[];
  budget: Record<string, string>;
  charges: Json[];
  posteriors: Record<string, { posterior: Record<string, string>; seen: string[] }>;
  effectLog: Json[];
}
export interface CheckResult {
  ok: boolean;
  violations: Violation[];
  counts: Record<string, number>;
}
export interface CampaignSummary {
  seed: number;
  /** The deliberate break the campaign ran with (absent: none). */
  break?: string;
  runs: number;
  faults: number;
  accepted: number;
  notAccepted: number;
  throttled: number;
  ended: number;
  faultsInjected: number;
  faultKinds: Record<string, number>;
  attention: { resolvedOk: number; resolvedFailed: number };
  /** Processes that exited without a fault killing them (restarted by the campaign, as an orchestrator would). */
  unexpectedExits: Array<{ host: string; gen: number; atMs: number; phase: string; code: number | null; why: string }>;
  durationMs: number;
  faultsPhaseMs: number;
  drainMs: number;
  counts: Record<string, number>;
  violationsByInvariant: Record<string, number>;
  replay: string;
}
export interface FaultRecord {
  i: number;
  kind: string;
  target?: string;
  atMs: number;
  downMs?: number;
  recoveredAtMs?: number;
  skipped?: string;
  /** From the fault's end to the first run that ended after it. */
  firstRunEndAfterMs?: number;
}
export interface CampaignResult {
  ok: boolean;
  violations: Violation[];
  summary: CampaignSummary;
  faultLog: FaultRecord[];
  history: History;
  timeline: { firstSubmitMs: number; faultsEndMs: number; lastEndMs: number; endsMs: number[] };
}
export interface CampaignOptions {
  runs: number;
  faults: number;
  seed: number;
  timeScale?: number;
  lockMs?: number;
  concurrency?: number;
  log?: (line: string) => void;
  progressMs?: number;
  drainTimeoutMs?: number;
  /** bench/faults: a fault every this many ms (start to start) while runs are submitted; `faults` is then ignored. */
  faultEveryMs?: number;
  faultKinds?: readonly string[];
  /** ms between submits (default: spread over the fault schedule); 0 = as fast as `maxOpenRuns` allows. */
  paceMs?: number;
  /** At most this many runs accepted and not yet ended (default 64). */
  maxOpenRuns?: number;
  /** Deliberately broken chaos tools (a key of BREAKS; '' or absent: none): the campaign must fail. */
  breakName?: string;
}
export function runCampaign(o: CampaignOptions): Promise<CampaignResult>;
export function replayCommand(o: { runs: number; faults: number; seed: number; timeScale: number; breakName?: string }): string;
/** The supported deliberate breaks: what the chaos tools then do wrong, and the invariant that catches it. */
export const BREAKS: Readonly<Record<string, { invariant: string; what: string }>>;
export function checkHistory(h: History): CheckResult;
/** Everything the checker needs, read from Redis (and the effect logs in `effectDir`) after the campaign quiesced. */
export function collectHistory(a: {
  // biome-ignore lint/suspicious/noExplicitAny: an ioredis client (Redis or Cluster)
  redis: any;
  prefix: string;
  tenant: string;
  runIds: string[];
  effectDir: string;
  api: (path: string) => Promise<Json>;
}): Promise<History>;
export const INVARIANTS: readonly string[];
export const FAULT_KINDS: readonly string[];
// biome-ignore lint/suspicious/noExplicitAny: a workflow definition as the API takes it (JSON)
export function chaosWorkflow(): { name: string; nodes: any[]; edges: any[] };
