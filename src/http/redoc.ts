import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

/** ReDoc's bundle, served from the installed package: the docs work offline, no CDN. */
const BUNDLE = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
const BUNDLE_URL = '/redoc/redoc.standalone.js';

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Taskyard API reference</title>
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="${BUNDLE_URL}"></script>
  </body>
</html>
`;

/**
 * Keeps the page to this server: ReDoc's menu shows Redocly's logo from their CDN, which would
 * leak a request from every reader (and fail offline). Styles are injected inline, search runs
 * in a blob: worker.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
].join('; ');

/** `/redoc`: the OpenAPI document rendered by ReDoc, beside Swagger UI at /docs. Public, like /docs. */
export function redocRoutes(app: FastifyInstance): void {
  const route = { config: { public: true }, schema: { hide: true } };
  app.get('/redoc', route, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).send(PAGE),
  );
  app.get(BUNDLE_URL, route, async (_request, reply) => {
    const { size } = await stat(BUNDLE);
    return reply
      .type('application/javascript; charset=utf-8')
      .header('content-length', size)
      .header('cache-control', 'public, max-age=86400')
      .send(createReadStream(BUNDLE));
  });
}
