/**
 * The outbound guard (issue 10 item 6): every HTTP request a tool makes goes through here.
 *
 * - One undici dispatcher whose connect-time DNS lookup refuses any resolved address in a
 *   loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved or unspecified
 *   range, IPv4-mapped/compatible and NAT64 IPv6 addresses included (their embedded IPv4 is
 *   checked). The check is on the address actually connected to, so DNS rebinding does not help.
 * - IP literals are checked before connecting (the WHATWG URL parser has already normalised
 *   decimal, hex, octal and short IPv4 forms such as `2130706433`, `0x7f.1`, `0177.0.0.1`,
 *   `127.1`).
 * - Redirects are followed by hand, at most `maxRedirects`, each hop checked as above; a
 *   non-GET request is never redirected.
 * - Bodies are read as streams and cut at `maxBodyBytes`.
 * - A tenant's host allow-list (`outboundAllowHosts` in its limits, set by the operator), when
 *   set, is the only hosts its tools may reach.
 * - Origins in OUTBOUND_TRUSTED_ORIGINS (operator configuration, e.g. an internal service the
 *   operator runs) skip the address check, never the allow-list.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import { z } from 'zod';
import { NonRetryableProviderError } from './errors.js';

/** OUTBOUND_TRUSTED_ORIGINS (worker and scheduler): comma-separated origin URLs, as a set of origins. */
export const TrustedOriginsEnvSchema = z.string().transform((s, ctx) => {
  const out = new Set<string>();
  for (const part of s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    try {
      out.add(new URL(part).origin);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not an origin URL` });
    }
  }
  return out;
});

/** An outbound request the guard refused; never retried. */
export class OutboundRefusedError extends NonRetryableProviderError {
  constructor(message: string) {
    super('PROVIDER_BAD_REQUEST', `outbound request refused: ${message}`);
  }
}

const V4 = [
  ['0.0.0.0', 8, 'unspecified/"this" network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'CGNAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved/broadcast'],
] as const;
const V6 = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'discard'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique local (private)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
] as const;

const v4Blocks = V4.map(([net, prefix, why]) => {
  const b = new BlockList();
  b.addSubnet(net, prefix, 'ipv4');
  return { b, why };
});
const v6Blocks = V6.map(([net, prefix, why]) => {
  const b = new BlockList();
  b.addSubnet(net, prefix, 'ipv6');
  return { b, why };
});

/** The IPv4 address embedded in an IPv4-mapped (::ffff:0:0/96), -compatible (::/96) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedV4(ip6: string): string | undefined {
  const lower = ip6.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted !== null) return dotted[1];
  const hex = /^(?:::ffff:|::|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex === null) return undefined;
  const hi = Number.parseInt(hex[1] as string, 16);
  const lo = Number.parseInt(hex[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Why connecting to `ip` is refused, or undefined when it is a public address. */
export function addressRefusal(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return v4Blocks.find((x) => x.b.check(ip, 'ipv4'))?.why;
  if (family === 6) {
    const v4 = embeddedV4(ip);
    if (v4 !== undefined) {
      const why = addressRefusal(v4);
      return why === undefined ? undefined : `${why} (IPv4 inside IPv6)`;
    }
    return v6Blocks.find((x) => x.b.check(ip, 'ipv6'))?.why;
  }
  return 'not an IP address';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A DNS lookup for the dispatcher's connections that refuses forbidden resolved addresses. */
function guardedLookup(hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void {
  dnsLookup(hostname, { family: options.family ?? 0, all: true }, (err, addresses) => {
    if (err !== null) return callback(err, []);
    for (const a of addresses) {
      const why = addressRefusal(a.address);
      if (why !== undefined) return callback(Object.assign(new OutboundRefusedError(`${hostname} resolves to ${a.address}, a ${why} address`), { code: 'EGAMBITREFUSED' }), []);
    }
    if (options.all === true) return callback(null, addresses);
    const first = addresses[0];
    if (first === undefined) return callback(Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' }), []);
    callback(null, first.address, first.family);
  });
}

export interface OutboundOptions {
  /** Origins (`scheme://host:port`) the operator trusts: no address check (OUTBOUND_TRUSTED_ORIGINS). */
  readonly trustedOrigins: ReadonlySet<string>;
  readonly maxBodyBytes: number;
  readonly maxRedirects: number;
  readonly timeoutMs: number;
}

export interface OutboundResponse {
  readonly status: number;
  readonly body: string;
  /** The body was longer than maxBodyBytes and was cut there. */
  readonly truncated: boolean;
}

/** Whether `host` is on the allow-list (`example.com`, or `*.example.com` for its subdomains). */
export function hostAllowed(host: string, allow: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return allow.some((p) => {
    const q = p.toLowerCase();
    return q.startsWith('*.') ? h.endsWith(q.slice(1)) : h === q;
  });
}

export class OutboundGuard {
  /** The one dispatcher every guarded request uses (connect-time address check). */
  readonly dispatcher: Dispatcher;
  private readonly trusted: Dispatcher;

  constructor(private readonly opts: OutboundOptions) {
    this.dispatcher = new Agent({ connect: { lookup: guardedLookup as never, timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
    this.trusted = new Agent({ connect: { timeout: opts.timeoutMs }, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
  }

  /**
   * What can be refused without connecting (scheme, credentials, an untrusted literal address or
   * `localhost`), or undefined; for checking a URL when it is configured (a webhook).
   */
  staticRefusal(url: URL): string | undefined {
    try {
      this.check(url, undefined);
      return undefined;
    } catch (err) {
      if (err instanceof OutboundRefusedError) return err.message.replace(/^outbound request refused: /, '');
      throw err;
    }
  }

  /** Checks one hop; answers the dispatcher to use. Throws OutboundRefusedError. */
  private check(url: URL, allow: readonly string[] | undefined): Dispatcher {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundRefusedError(`scheme ${url.protocol} (only http and https)`);
    if (url.username !== '' || url.password !== '') throw new OutboundRefusedError('credentials in the URL');
    if (allow !== undefined && allow.length > 0 && !hostAllowed(url.hostname, allow)) throw new OutboundRefusedError(`host ${url.hostname} is not on the tenant's allow-list`);
    if (this.opts.trustedOrigins.has(url.origin)) return this.trusted;
    const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
    if (isIP(host) !== 0) {
      const why = addressRefusal(host);
      if (why !== undefined) throw new OutboundRefusedError(`${host} is a ${why} address`);
    } else if (host === 'localhost' || host.endsWith('.localhost')) throw new OutboundRefusedError(`${host} is a loopback name`);
    return this.dispatcher;
  }

  /** A guarded request: every hop checked, redirects by hand, the body streamed up to the cap. */
  async request(
    target: URL,
    init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; signal: AbortSignal },
    allow: readonly string[] | undefined,
  ): Promise<OutboundResponse> {
    let url = target;
    for (let hop = 0; ; hop++) {
      const dispatcher = this.check(url, allow);
      let res: Awaited<ReturnType<typeof undiciFetch>>;
      try {
        res = await undiciFetch(url, { method: init.method, headers: init.headers, body: init.body, signal: init.signal, redirect: 'manual', dispatcher });
      } catch (err) {
        // The connect-time refusal arrives wrapped (fetch failed <- connect error <- lookup error).
        for (let c: unknown = err, depth = 0; c !== undefined && c !== null && depth < 5; c = (c as { cause?: unknown }).cause, depth++)
          if (c instanceof OutboundRefusedError) throw c;
        throw err;
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel();
        if (init.method !== 'GET') throw new OutboundRefusedError(`a redirect of a ${init.method} request (to ${location})`);
        if (hop >= this.opts.maxRedirects) throw new OutboundRefusedError(`more than ${this.opts.maxRedirects} redirects`);
        url = new URL(location, url);
        continue;
      }
      return { status: res.status, ...(await readCapped(res.body, this.opts.maxBodyBytes)) };
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.dispatcher.close(), this.trusted.close()]);
  }
}

async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<{ body: string; truncated: boolean }> {
  if (body === null) return { body: '', truncated: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - size));
      size = maxBytes;
      truncated = true;
      await reader.cancel();
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { body: Buffer.concat(chunks).toString('utf8'), truncated };
}
