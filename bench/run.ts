/**
 * `npm run bench`: Taskyard's figures beside the peers measured in the same run, as ratios.
 * Sizes: BENCH_TASKS (default 100000), BENCH_LEDGER_ROWS (default 1000000), BENCH_HTTP_SECONDS (5).
 * Needs Redis on 127.0.0.1:6379 for the BullMQ peer, and PostgreSQL (BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test) for the scale-out figures (BENCH_SCALEOUT_TASKS, default 50000).
 * BENCH_SCALEOUT_CONCURRENCY (default 25 per worker) sets both sides' concurrency; BENCH_SCALEOUT_PREFETCH (default: the
 * concurrency) the tracked workers' prefetch in the second tracked drain. BENCH_ONLY=embedded,latency,http,reads,scaleout,ledgers
 * runs only those sections.
 */
import { formatTable, peakRss, type Cell } from './lib/stats.js';
import { bullmqLatency, rawBullmq } from './peers/bullmq.js';
import { fastifyHello } from './peers/fastify-hello.js';
import { bareSqliteLedger } from './peers/sqlite-ledger.js';
import { postgresThroughput, sqliteProcesses } from './ledgers/run.js';
import { scaleOut } from './scaleout/run.js';
import { embeddedThroughput, enqueueToStart, httpLaunch, ledgerReads } from './taskyard.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 100_000);
const LEDGER_ROWS = Number(process.env.BENCH_LEDGER_ROWS ?? 1_000_000);
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const SCALEOUT_TASKS = Number(process.env.BENCH_SCALEOUT_TASKS ?? 50_000);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const wanted = (section: string) => !ONLY || ONLY.has(section);

const rows: Record<string, Cell>[] = [];
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const add = (metric: string, taskyard: Cell, peer: string, peerValue: Cell, vs: Cell, target: string) =>
  rows.push({ metric, taskyard, peer, 'peer value': peerValue, ratio: vs, target });
const step = (text: string) => process.stderr.write(`bench: ${text}\n`);

const rss = peakRss();

if (wanted('embedded')) {
  step(`embedded throughput, ${TASKS} no-op tasks`);
  const embedded = await embeddedThroughput(TASKS);
  step('bare better-sqlite3 ledger');
  const bare = bareSqliteLedger(TASKS);
  step('raw BullMQ drain');
  const bull = await rawBullmq(TASKS);
  add('embedded tasks/s (submit + drain)', embedded.totalPerSec, 'bare SQLite ledger', bare.jobsPerSec, ratio(embedded.totalPerSec, bare.jobsPerSec), '>= 20k/s');
  add('embedded tasks/s (drain only)', embedded.drainPerSec, 'raw BullMQ drain', bull.jobsPerSec, ratio(embedded.drainPerSec, bull.jobsPerSec), '>= 1.5x BullMQ');
  add('embedded tasks/s (submit + drain)', embedded.totalPerSec, 'raw BullMQ drain', bull.jobsPerSec, ratio(embedded.totalPerSec, bull.jobsPerSec), '');
}

if (wanted('latency')) {
  step('enqueue-to-start latency (idle)');
  const latency = await enqueueToStart(300);
  const bullLatency = await bullmqLatency(300);
  add('enqueue->start p50 ms', latency.p50, 'raw BullMQ', bullLatency.p50, ratio(latency.p50, bullLatency.p50), '');
  add('enqueue->start p99 ms', latency.p99, 'raw BullMQ', bullLatency.p99, ratio(latency.p99, bullLatency.p99), '');
}

if (wanted('http')) {
  step('HTTP launch (autocannon, 50 connections)');
  const launch = await httpLaunch(HTTP_SECONDS);
  const hello = await fastifyHello({ duration: HTTP_SECONDS });
  add('HTTP launch req/s', launch.requestsPerSec, 'Fastify hello', hello.requestsPerSec, ratio(launch.requestsPerSec, hello.requestsPerSec), '>= 0.5x');
  add('HTTP launch p99 ms', launch.p99, 'Fastify hello', hello.p99, ratio(launch.p99, hello.p99), '<= 25 ms');
  if (launch.non2xx || launch.errors) add('HTTP launch non-2xx / errors', `${launch.non2xx} / ${launch.errors}`, '', '', '', '0');
}

if (wanted('reads')) {
  step(`ledger reads at ${LEDGER_ROWS} rows (filling first)`);
  const reads = await ledgerReads(LEDGER_ROWS, 500);
  add(`GET /api/tasks/{id} p99 ms @${LEDGER_ROWS}`, reads.getById.p99, '', '', '', '<= 5 ms');
  add(`filtered list p99 ms @${LEDGER_ROWS}`, reads.filteredList.p99, '', '', '', '<= 20 ms');
  add(`statistics p99 ms @${LEDGER_ROWS}`, reads.statistics.p99, '', '', '', '<= 50 ms');
  add('ledger fill s (bulk insert)', reads.fillSeconds, '', '', '', '');
}

if (wanted('scaleout')) {
  step(`scale-out: ${SCALEOUT_TASKS} no-op tasks, tracked BullMQ (2 worker processes, PostgreSQL ledger) vs raw BullMQ (2 worker processes)`);
  const scaleOutConcurrency = Number(process.env.BENCH_SCALEOUT_CONCURRENCY ?? 25);
  const so = await scaleOut(SCALEOUT_TASKS, 2, scaleOutConcurrency, Number(process.env.BENCH_SCALEOUT_PREFETCH ?? scaleOutConcurrency));
  const total = so.workers * so.concurrency;
  add(`tracked BullMQ tasks/s (2 workers x ${so.concurrency})`, so.trackedPerSec, `raw BullMQ, 2 workers x ${so.concurrency}`, so.rawPerSec, ratio(so.trackedPerSec, so.rawPerSec), '>= 0.8x');
  add(`tracked BullMQ, prefetch ${so.prefetch}, tasks/s`, so.prefetchedPerSec, `raw BullMQ, 2 workers x ${so.concurrency}`, so.rawPerSec, ratio(so.prefetchedPerSec, so.rawPerSec), '>= 0.8x');
  add('tracked BullMQ enqueue->start p50 ms', so.latency.p50, '', '', '', '<= 10 ms');
  add('tracked BullMQ enqueue->start p99 ms', so.latency.p99, '', '', '', '');
  const cpu = (c: typeof so.cpu.raw) => `${Math.round(c.total)} (workers ${Math.round(c.workers)}, PostgreSQL ${Math.round(c.postgres)}, Redis ${Math.round(c.redis)}, API ${Math.round(c.api)})`;
  add('CPU ms per 1000 tasks, tracked', cpu(so.cpu.tracked), 'raw BullMQ', cpu(so.cpu.raw), ratio(so.cpu.tracked.total, so.cpu.raw.total), '');
  add('CPU ms per 1000 tasks, tracked with prefetch', cpu(so.cpu.prefetched), '', '', '', '');
  add(`connections during the drain (concurrency ${total})`, `Redis +${so.redisConnections}, PostgreSQL ${so.pgConnections}`, '', '', '', '');
}

if (wanted('ledgers')) {
  const pgTasks = Number(process.env.BENCH_PG_TASKS ?? 20_000);
  step(`local engine on the PostgreSQL store, ${pgTasks} no-op tasks, and a bare pg ledger`);
  const onPg = await postgresThroughput(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', pgTasks);
  add('local engine on PostgreSQL tasks/s', onPg.taskyard.tasksPerSec, 'bare pg ledger', onPg.bare, ratio(onPg.taskyard.tasksPerSec, onPg.bare), '>= 0.5x');
  add('PostgreSQL connections (local engine, one process)', onPg.taskyard.connections ?? '', '', '', '', '');
  const mpTasks = Number(process.env.BENCH_MP_TASKS ?? 30_000);
  step(`two worker processes on one SQLite file vs one, ${mpTasks} no-op tasks each, twice interleaved`);
  const mp = await sqliteProcesses(mpTasks);
  add('2 processes, one SQLite file, tasks/s', mp.two, '1 process, same file', mp.one, ratio(mp.two, mp.one), '>= 0.8x');
}

add('peak RSS MB (whole run)', rss.stop(), '', '', '', '<= 300 MB');
console.log(formatTable(rows));
process.exit(0);
