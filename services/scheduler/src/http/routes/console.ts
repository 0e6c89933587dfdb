/**
 * The console (packages/console, issue 12 item 2) and bull-board, served by the scheduler.
 * - `/console/`: the built UI's static files (public: the page holds no data; everything it
 *   shows comes from the API with the key the user signs in with).
 * - `/admin/queues`: bull-board over the scheduler's BullMQ queues, for operators only. A
 *   browser cannot send a bearer header when it navigates, so bull-board's routes accept the
 *   operator key from the `gambit_key` cookie the console sets for that path (and from the
 *   Authorization header); anything else is a 401.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { KeyStore } from '../auth.js';
import { HttpError } from '../errors.js';
import type { App } from '../deps.js';

export interface ConsoleDeps {
  readonly keys: KeyStore;
  /** Queues bull-board shows. */
  readonly queues: readonly Queue[];
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** The built console: `dist` of the @gambit/console package. */
export function consoleDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@gambit/console/package.json')), 'dist');
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

export function registerConsoleRoutes(app: App, deps: ConsoleDeps): void {
  const root = consoleDir();
  const serve = async (file: string, reply: { type: (t: string) => unknown; header: (k: string, v: string) => unknown; send: (b: Buffer) => unknown }) => {
    const path = normalize(join(root, file));
    if (path !== root && !path.startsWith(root + sep)) throw new HttpError(404, 'NOT_FOUND', 'no such file');
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      throw new HttpError(404, 'NOT_FOUND', `no console file ${file}`);
    }
    reply.type(TYPES[extname(path)] ?? 'application/octet-stream');
    // Hashed asset names never change; the page itself is always re-read.
    reply.header('cache-control', file.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    return reply.send(body);
  };
  app.get('/console', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/'));
  app.get('/console/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => serve('index.html', reply));
  app.get('/console/*', { config: { public: true }, schema: { hide: true } }, async (req, reply) => serve((req.params as { '*': string })['*'], reply));

  // bull-board, operators only (see the header comment).
  const board = new FastifyAdapter();
  board.setBasePath('/admin/queues');
  // @bull-board/fastify 9.10.1 is typed against @bull-board/api 9.10.1; the adapter interface is the same in 9.10.2.
  // Issue 13 item 4: with queue shards, each lane has a queue per shard under the same name;
  // bull-board tells them apart by their hash tag (its prefix).
  const names = deps.queues.map((q) => q.name);
  const shared = (q: Queue) => names.filter((n) => n === q.name).length > 1;
  createBullBoard({
    queues: deps.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false, ...(shared(q) ? { prefix: `${q.opts.prefix ?? ''} ` } : {}) })),
    serverAdapter: board as never,
  });
  void app.register(async (scoped: FastifyInstance) => {
    scoped.addHook('onRoute', (r) => {
      r.config = { ...(r.config ?? {}), public: true };
      r.schema = { ...(r.schema ?? {}), hide: true };
    });
    // Answered here, not thrown: bull-board installs its own error handler for its routes.
    scoped.addHook('onRequest', async (req, reply) => {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      const key = bearer ?? cookie(req.headers.cookie, 'gambit_key');
      const auth = key === undefined ? undefined : await deps.keys.verify(key);
      if (auth === undefined)
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: { code: 'UNAUTHENTICATED', message: 'the queues view needs the operator key (sign in to the console as the operator)' } });
      if (auth.kind !== 'operator') return reply.code(403).send({ error: { code: 'FORBIDDEN', message: 'the queues view is for operators' } });
      return undefined;
    });
    await scoped.register(board.registerPlugin() as never, { prefix: '/admin/queues' });
  });
}
