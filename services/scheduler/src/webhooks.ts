/**
 * The run-end webhook (docs/api.md, Webhooks): a tenant registers a URL and a secret; when one of
 * its runs ends, a delivery is queued as a BullMQ job (state in Redis, so it survives the
 * scheduler that queued it: any scheduler's webhook worker delivers it) and POSTed, signed with
 * HMAC-SHA256 of `<t>.<body>` under the secret (`Gambit-Signature: t=<ms>,v1=<hex>`). A delivery
 * that fails (no answer within the timeout, or a non-2xx status) is retried with exponential
 * backoff up to WEBHOOK_ATTEMPTS tries; every try is recorded in the tenant's delivery log.
 * One job per run (job id from tenant and run), so a run is never notified twice by the queue.
 *
 * Issue 10 item 6: every delivery goes through the outbound guard (@gambit/shared/outbound, the
 * same dispatcher and checks as the workers' tool requests): the resolved address must be public
 * unless its origin is in OUTBOUND_TRUSTED_ORIGINS, redirects are refused (a POST is never
 * redirected), the answer's body is read up to OUTBOUND_MAX_BODY_BYTES, and the tenant's
 * `outboundAllowHosts` (its limits) applies. A refused delivery is recorded as a failed try with
 * the reason and not retried (the answer would not change). The URL is also checked when it is
 * set: credentials, and a literal address or `localhost` the guard would refuse, are a 422.
 */
import { createHmac } from 'node:crypto';
import type { Clock, Logger, WebhookBody } from '@gambit/shared';
import { type OutboundGuard, OutboundRefusedError } from '@gambit/shared/outbound';
import { admissionKeys, type KeySpace, markEndedRun, QUEUES, queuePrefix, type RedisLike, runKeys, tenantKeys } from '@gambit/shared/redis';
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { HttpError } from './http/errors.js';

export interface WebhookOptions {
  /** Tries per delivery (the first included). */
  readonly attempts: number;
  /** First retry delay; each later one doubles. */
  readonly backoffMs: number;
  /** How long one POST may take. */
  readonly timeoutMs: number;
  /** Deliveries this process makes at once. */
  readonly concurrency: number;
}

export interface DeliveryRecord {
  readonly deliveryId: string;
  readonly runId: string;
  readonly attempt: number;
  readonly atMs: number;
  readonly ok: boolean;
  /** HTTP status of the answer, or null when none came. */
  readonly status: number | null;
  readonly error: string | null;
  /** True on the last failed try: no more retries. */
  readonly gaveUp: boolean;
}

interface JobData {
  readonly tenant: string;
  readonly runId: string;
  readonly status: string;
  readonly endMs: number;
}

const MAX_LOG = 200;

/** `t=<ms>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: what a receiver recomputes to verify. */
export function signature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

export class WebhookService {
  /** The deliveries' queue (shown in bull-board). */
  readonly queue: Queue<JobData>;
  private worker: Worker<JobData> | undefined;

  constructor(
    private readonly redis: RedisLike,
    private readonly bull: RedisLike,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: WebhookOptions,
    private readonly outbound: OutboundGuard,
  ) {
    this.queue = new Queue<JobData>(QUEUES.webhooks, { connection: bull, prefix: queuePrefix(ks) });
  }

  async configure(tenant: string, b: WebhookBody): Promise<{ url: string; updatedAtMs: number }> {
    const refusal = this.outbound.staticRefusal(new URL(b.url));
    if (refusal !== undefined) throw new HttpError(422, 'WEBHOOK_URL_REFUSED', `url: refused by the outbound guard: ${refusal}`, 'url');
    const now = this.clock.nowMs();
    await this.redis.hset(tenantKeys(this.ks, tenant).webhook, 'url', b.url, 'secret', b.secret, 'updatedAtMs', String(now));
    return { url: b.url, updatedAtMs: now };
  }

  /** The configured URL (never the secret), or null. */
  async get(tenant: string): Promise<{ url: string; updatedAtMs: number } | null> {
    const [url, at] = await this.redis.hmget(tenantKeys(this.ks, tenant).webhook, 'url', 'updatedAtMs');
    return url === null || url === undefined ? null : { url, updatedAtMs: Number(at ?? 0) };
  }

  async remove(tenant: string): Promise<boolean> {
    return (await this.redis.del(tenantKeys(this.ks, tenant).webhook)) > 0;
  }

  /** The tenant's most recent delivery tries, newest first. */
  async deliveries(tenant: string, limit: number): Promise<DeliveryRecord[]> {
    return (await this.redis.lrange(tenantKeys(this.ks, tenant).deliveries, 0, limit - 1)).map((s) => JSON.parse(s) as DeliveryRecord);
  }

  /**
   * Queues the delivery of a run's end when its tenant has a webhook, then marks the run
   * (`endNotice`). Called by the engine's onRunEnd, and by the ended pass of any scheduler for a
   * run not marked yet (a scheduler that ended it died first): the job id is the run's, so a run
   * raced by two schedulers is queued once while the job exists.
   */
  async runEnded(e: JobData): Promise<void> {
    if ((await this.redis.hexists(tenantKeys(this.ks, e.tenant).webhook, 'url')) === 1)
      await this.queue.add('run-end', e, {
        jobId: `run-end-${e.tenant}-${e.runId}`,
        attempts: this.opts.attempts,
        backoff: { type: 'exponential', delay: this.opts.backoffMs },
        removeOnComplete: { count: 1_000 },
        removeOnFail: { count: 5_000 },
      });
    await markEndedRun(this.redis, this.ks, { tenant: e.tenant, runId: e.runId, flag: 'endNotice' });
  }

  /** Starts this process's delivery worker. */
  start(): void {
    this.worker = new Worker<JobData>(QUEUES.webhooks, (job) => this.deliver(job), {
      connection: this.bull,
      prefix: queuePrefix(this.ks),
      concurrency: this.opts.concurrency,
    });
    this.worker.on('error', (err) => this.log.warn({ err: String(err) }, 'webhook worker error'));
  }

  private async record(tenant: string, r: DeliveryRecord): Promise<void> {
    const k = tenantKeys(this.ks, tenant).deliveries;
    await this.redis.lpush(k, JSON.stringify(r));
    await this.redis.ltrim(k, 0, MAX_LOG - 1);
  }

  private async deliver(job: Job<JobData>): Promise<string> {
    const { tenant, runId } = job.data;
    const [url, secret] = await this.redis.hmget(tenantKeys(this.ks, tenant).webhook, 'url', 'secret');
    // Removed since the run ended: nothing to deliver (not an error to retry).
    if (url === null || url === undefined || secret === null || secret === undefined) return 'no webhook';
    const h = await this.redis.hmget(runKeys(this.ks, tenant, runId).run, 'workflowName', 'status', 'reason', 'createdAtMs', 'finishedAtMs');
    const attempt = job.attemptsMade + 1;
    const deliveryId = job.id ?? `run-end-${tenant}-${runId}`;
    const body = JSON.stringify({
      type: 'run.ended',
      deliveryId,
      attempt,
      tenant,
      runId,
      workflow: h[0] ?? null,
      status: h[1] ?? job.data.status,
      reason: h[2] ?? null,
      createdAtMs: h[3] === null || h[3] === undefined ? null : Number(h[3]),
      finishedAtMs: h[4] === null || h[4] === undefined ? job.data.endMs : Number(h[4]),
    });
    const t = this.clock.nowMs();
    let status: number | null = null;
    let error: string | null = null;
    let refused = false;
    try {
      const raw = await this.redis.get(admissionKeys(this.ks, tenant).limits);
      const allow = raw === null ? undefined : (JSON.parse(raw) as { outboundAllowHosts?: string[] }).outboundAllowHosts;
      const res = await this.outbound.request(
        new URL(url),
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'gambit-signature': signature(secret, t, body), 'gambit-delivery': deliveryId },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        },
        allow,
      );
      status = res.status;
      if (status < 200 || status >= 300) error = `answered ${status}`;
    } catch (err) {
      refused = err instanceof OutboundRefusedError;
      error = refused ? (err as Error).message : err instanceof Error ? `${err.name}: ${(err as { cause?: { message?: string } }).cause?.message ?? err.message}` : String(err);
    }
    const gaveUp = error !== null && (refused || attempt >= this.opts.attempts);
    await this.record(tenant, { deliveryId, runId, attempt, atMs: t, ok: error === null, status, error, gaveUp });
    if (error !== null) {
      this.log.warn({ tenant, runId, attempt, error, gaveUp }, 'webhook delivery failed');
      // A refusal is final: retrying would be refused again.
      if (refused) throw new UnrecoverableError(`webhook ${url}: ${error}`);
      throw new Error(`webhook ${url}: ${error}`);
    }
    return `delivered (${status})`;
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}
