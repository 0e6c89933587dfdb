/**
 * A scripted HTTP server on 127.0.0.1 (free port) for provider adapter tests. Each request is
 * answered by a script: an error status with headers and a JSON body, or an SSE stream of raw
 * frames written with a delay between them. It records every request body and whether the
 * client closed the connection before the stream finished (what an abort must do).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Script =
  | { readonly kind: 'error'; readonly status: number; readonly headers?: Record<string, string>; readonly body: unknown }
  | { readonly kind: 'sse'; readonly frames: readonly string[]; readonly delayMs: number }
  /** Accept the request and never answer (timeouts). */
  | { readonly kind: 'hang' };

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
}

export interface WireServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Resolves when the client closes a streaming response before its last frame. */
  clientAborted(): Promise<{ framesWritten: number }>;
  close(): Promise<void>;
}

export async function startWireServer(script: (req: RecordedRequest) => Script): Promise<WireServer> {
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const open = new Set<ServerResponse>();
  let onAbort: ((v: { framesWritten: number }) => void) | undefined;
  const aborted = new Promise<{ framesWritten: number }>((resolve) => {
    onAbort = resolve;
  });

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const rec: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: raw ? JSON.parse(raw) : undefined,
      };
      requests.push(rec);
      const s = script(rec);
      if (s.kind === 'hang') {
        open.add(res);
        res.on('close', () => open.delete(res));
        return;
      }
      if (s.kind === 'error') {
        res.writeHead(s.status, { 'content-type': 'application/json', ...(s.headers ?? {}) });
        res.end(JSON.stringify(s.body));
        return;
      }
      open.add(res);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      let i = 0;
      let finished = false;
      res.on('close', () => {
        open.delete(res);
        if (!finished) onAbort?.({ framesWritten: i });
      });
      const writeNext = () => {
        if (res.destroyed) return;
        if (i >= s.frames.length) {
          finished = true;
          res.end();
          return;
        }
        res.write(s.frames[i]!);
        i++;
        const t = setTimeout(() => {
          timers.delete(t);
          writeNext();
        }, s.delayMs);
        timers.add(t);
      };
      writeNext();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    clientAborted: () => aborted,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const r of open) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}
