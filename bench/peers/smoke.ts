// Quick self-check of the peer baselines at small sizes: `npx tsx bench/peers/smoke.ts`.
import { formatTable, peakRss, type Cell } from '../lib/stats.js';
import { bullmqLatency, rawBullmq } from './bullmq.js';
import { fastifyHello } from './fastify-hello.js';
import { bareSqliteLedger } from './sqlite-ledger.js';

const JOBS = Number(process.env.SMOKE_JOBS ?? 20_000);
const rows: Record<string, Cell>[] = [];
const rss = peakRss();

const ledger = bareSqliteLedger(JOBS);
rows.push({ peer: 'sqlite ledger (bare)', metric: `jobs/s (${JOBS})`, value: ledger.jobsPerSec, seconds: ledger.seconds });

const bull = await rawBullmq(JOBS);
rows.push({ peer: 'bullmq (raw)', metric: `jobs/s drain (${JOBS})`, value: bull.jobsPerSec, seconds: bull.seconds });

const lat = await bullmqLatency(200);
rows.push({ peer: 'bullmq (raw)', metric: 'enqueue→start p50 ms', value: lat.p50 });
rows.push({ peer: 'bullmq (raw)', metric: 'enqueue→start p99 ms', value: lat.p99 });

const http = await fastifyHello({ duration: 3 });
rows.push({ peer: 'fastify hello', metric: 'POST req/s (50 conn, 3 s)', value: http.requestsPerSec });
rows.push({ peer: 'fastify hello', metric: 'POST p99 ms', value: http.p99 });

rows.push({ peer: 'process', metric: 'peak RSS MB', value: rss.stop() });
console.log(formatTable(rows));
