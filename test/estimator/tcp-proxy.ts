/**
 * A TCP proxy on 127.0.0.1 in front of Redis, to cut a client's connection on purpose (M9.5
 * catch-up test): `cut()` destroys every open connection and refuses new ones until `restore()`.
 * `hold` (optional) sees every chunk a client sends; when it returns true, that chunk and all
 * later ones of that connection are held back from Redis (the crash-between-apply-and-ack test
 * holds the chunk carrying an XACK, then SIGKILLs the client). `dropReplyAfter(marker)` arms the
 * proxy to swallow the first reply that follows a client chunk containing `marker` and cut that
 * connection (a reply lost in a reconnect: test/worker/stage-resend); `dropped()` counts them.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  cut(): void;
  restore(): void;
  dropReplyAfter(marker: string): void;
  dropped(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number, hold?: (chunk: Buffer) => boolean): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let down = false;
  let marker: string | undefined;
  let dropped = 0;
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: targetHost, port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    let held = false;
    let dropNext = false;
    client.on('data', (chunk: Buffer) => {
      if (marker !== undefined && chunk.includes(marker)) {
        marker = undefined;
        dropNext = true;
      }
      if (!held && hold?.(chunk) === true) held = true;
      if (!held) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (dropNext) {
        dropped += 1;
        drop();
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('proxy: no port');
  return {
    port: addr.port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    dropReplyAfter(m) {
      marker = m;
    },
    dropped: () => dropped,
    close() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
