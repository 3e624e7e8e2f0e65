/** The Fastify hello peer alone in its process, for load from another process: prints its URL, exits on SIGTERM. */
import Fastify from 'fastify';

const app = Fastify();
app.post('/api/tasks', async (_request, reply) => reply.status(202).send({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
console.log(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`);
process.once('SIGTERM', async () => {
  await app.close();
  console.error(`peak RSS MB ${Math.round(process.resourceUsage().maxRSS / 1024)}`);
  process.exit(0);
});
