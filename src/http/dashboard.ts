import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The web dashboard: a static single-page app served at `/`, built by `npm run build:dashboard`
 * into `dist/dashboard/`. The page holds no data, so its routes are public; everything it shows
 * comes from the API with the signed-in user's key, under the same roles and tenant scope.
 */

export interface DashboardOptions {
  /** Folder of the built app (index.html and assets/); found next to the code by default. */
  dir?: string;
}

/** Where the built app lives: beside `src/` when run from source, beside `http/` when run from `dist/`. */
export function findDashboardDir(): string | null {
  const candidates = [new URL('../../dist/dashboard/', import.meta.url), new URL('../dashboard/', import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return null;
}

/** The page runs only its own scripts and talks only to this server. */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Taskyard</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Taskyard</h1>
<p>The dashboard has not been built yet. Run <code>npm run build:dashboard</code> (or <code>npm install</code>)
and reload this page.</p>
<p>The API is up: see <a href="/docs">/docs</a>.</p>
</body></html>
`;

export async function dashboardRoutes(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  // Who the caller is, so the dashboard shows only what the key may do and see.
  app.get(
    '/api/whoami',
    { schema: { tags: ['Auth'], summary: "The caller's role and tenants (anonymous in protected mode)" } },
    async (request) => ({ role: request.principal.role, tenants: request.principal.tenants, anonymous: request.principal.anonymous }),
  );

  // Every route below serves the static page and its assets: no credentials needed.
  app.addHook('onRoute', (route) => {
    if (route.url === '/api/whoami') return;
    route.config = { ...(route.config as object), public: true };
  });

  const dir = options.dir ?? findDashboardDir();
  const sendPage = (reply: FastifyReply) => {
    // Read on each request: the page is tiny, and a rebuild shows up without a restart.
    const html = dir && existsSync(`${dir}index.html`) ? readFileSync(`${dir}index.html`, 'utf8') : NOT_BUILT;
    return reply.headers(PAGE_HEADERS).send(html);
  };
  app.get('/', { schema: { hide: true } }, async (_request, reply) => sendPage(reply));
  app.get('/index.html', { schema: { hide: true } }, async (_request, reply) => sendPage(reply));

  if (dir && existsSync(`${dir}assets`)) {
    // File names carry a content hash, so they can be cached for good.
    await app.register(fastifyStatic, { root: `${dir}assets`, prefix: '/assets/', immutable: true, maxAge: '365d', index: false });
  }
}
