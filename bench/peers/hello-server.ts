/**
 * The Fastify hello peer's server, in a process of its own like Taskyard's (bench/server.ts):
 * `node --import tsx bench/peers/hello-server.ts` prints `ready {url}` and stops on SIGTERM.
 */
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';

const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
app.post('/hello', async (req) => ({ echo: req.body }));
await app.listen({ host: '127.0.0.1', port: 0 });
const { port } = app.server.address() as AddressInfo;
process.stdout.write(`ready ${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
