// Bare Fastify baseline: the ceiling for any HTTP layer built on Fastify. Measured exactly as
// Taskyard's launch is: the server in a process of its own, autocannon in another.
import { runAutocannon } from '../lib/autocannon.js';
import { startChild, watchMemory } from '../lib/child.js';

export interface HttpResult {
  requestsPerSec: number;
  p99: number;
  /** The hello server process's peak RSS, MB. */
  peakRssMb: number;
}

export async function fastifyHello(opts: { connections?: number; duration?: number } = {}): Promise<HttpResult> {
  const server = startChild('peers/hello-server.ts');
  try {
    const { url } = await server.next<{ url: string }>('ready');
    const memory = watchMemory(server.pid);
    const r = await runAutocannon({
      url: `${url}/hello`,
      method: 'POST',
      body: JSON.stringify({ name: 'noop', params: { n: 1 } }),
      headers: { 'content-type': 'application/json' },
      connections: opts.connections ?? 50,
      duration: opts.duration ?? 5,
    });
    const peakRssMb = memory.stop();
    if (r.non2xx || r.errors) throw new Error(`fastifyHello: ${r.non2xx} non-2xx, ${r.errors} errors`);
    return { requestsPerSec: r.requestsPerSec, p99: r.p99, peakRssMb };
  } finally {
    await server.stop();
  }
}
