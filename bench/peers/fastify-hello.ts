// Bare Fastify baseline: the ceiling for any HTTP layer built on Fastify.
// The server runs in the SAME process as autocannon, on purpose: Taskyard's HTTP figure is
// measured the same way, so both share the load generator's CPU cost and the ratio stays fair.
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { runAutocannon } from '../lib/autocannon.js';

export interface HttpResult {
  requestsPerSec: number;
  p99: number;
}

export async function fastifyHello(opts: { connections?: number; duration?: number } = {}): Promise<HttpResult> {
  const app = Fastify({ logger: false });
  app.get('/hello', async () => ({ hello: 'world' }));
  app.post('/hello', async (req) => ({ echo: req.body }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { port } = app.server.address() as AddressInfo;
    const r = await runAutocannon({
      url: `http://127.0.0.1:${port}/hello`,
      method: 'POST',
      body: JSON.stringify({ name: 'noop', params: { n: 1 } }),
      headers: { 'content-type': 'application/json' },
      connections: opts.connections ?? 50,
      duration: opts.duration ?? 5,
    });
    if (r.non2xx || r.errors) throw new Error(`fastifyHello: ${r.non2xx} non-2xx, ${r.errors} errors`);
    return { requestsPerSec: r.requestsPerSec, p99: r.p99 };
  } finally {
    await app.close();
  }
}
