/**
 * `npm run bench`: Taskyard's figures beside the peers measured in the same run, as ratios.
 * Sizes: BENCH_TASKS (default 100000), BENCH_LEDGER_ROWS (default 1000000), BENCH_HTTP_SECONDS (5).
 * Needs Redis on 127.0.0.1:6379 for the BullMQ peer.
 */
import { formatTable, peakRss, type Cell } from './lib/stats.js';
import { bullmqLatency, rawBullmq } from './peers/bullmq.js';
import { fastifyHello } from './peers/fastify-hello.js';
import { bareSqliteLedger } from './peers/sqlite-ledger.js';
import { embeddedThroughput, enqueueToStart, httpLaunch, ledgerReads } from './taskyard.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 100_000);
const LEDGER_ROWS = Number(process.env.BENCH_LEDGER_ROWS ?? 1_000_000);
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);

const rows: Record<string, Cell>[] = [];
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const add = (metric: string, taskyard: Cell, peer: string, peerValue: Cell, vs: Cell, target: string) =>
  rows.push({ metric, taskyard, peer, 'peer value': peerValue, ratio: vs, target });
const step = (text: string) => process.stderr.write(`bench: ${text}\n`);

const rss = peakRss();

step(`embedded throughput, ${TASKS} no-op tasks`);
const embedded = await embeddedThroughput(TASKS);
step('bare better-sqlite3 ledger');
const bare = bareSqliteLedger(TASKS);
step('raw BullMQ drain');
const bull = await rawBullmq(TASKS);
add('embedded tasks/s (submit + drain)', embedded.totalPerSec, 'bare SQLite ledger', bare.jobsPerSec, ratio(embedded.totalPerSec, bare.jobsPerSec), '>= 20k/s');
add('embedded tasks/s (drain only)', embedded.drainPerSec, 'raw BullMQ drain', bull.jobsPerSec, ratio(embedded.drainPerSec, bull.jobsPerSec), '>= 1.5x BullMQ');
add('embedded tasks/s (submit + drain)', embedded.totalPerSec, 'raw BullMQ drain', bull.jobsPerSec, ratio(embedded.totalPerSec, bull.jobsPerSec), '');

step('enqueue-to-start latency (idle)');
const latency = await enqueueToStart(300);
const bullLatency = await bullmqLatency(300);
add('enqueue->start p50 ms', latency.p50, 'raw BullMQ', bullLatency.p50, ratio(latency.p50, bullLatency.p50), '');
add('enqueue->start p99 ms', latency.p99, 'raw BullMQ', bullLatency.p99, ratio(latency.p99, bullLatency.p99), '');

step('HTTP launch (autocannon, 50 connections)');
const launch = await httpLaunch(HTTP_SECONDS);
const hello = await fastifyHello({ duration: HTTP_SECONDS });
add('HTTP launch req/s', launch.requestsPerSec, 'Fastify hello', hello.requestsPerSec, ratio(launch.requestsPerSec, hello.requestsPerSec), '>= 0.5x');
add('HTTP launch p99 ms', launch.p99, 'Fastify hello', hello.p99, ratio(launch.p99, hello.p99), '<= 25 ms');
if (launch.non2xx || launch.errors) add('HTTP launch non-2xx / errors', `${launch.non2xx} / ${launch.errors}`, '', '', '', '0');

step(`ledger reads at ${LEDGER_ROWS} rows (filling first)`);
const reads = await ledgerReads(LEDGER_ROWS, 500);
add(`GET /api/tasks/{id} p99 ms @${LEDGER_ROWS}`, reads.getById.p99, '', '', '', '<= 5 ms');
add(`filtered list p99 ms @${LEDGER_ROWS}`, reads.filteredList.p99, '', '', '', '<= 20 ms');
add(`statistics p99 ms @${LEDGER_ROWS}`, reads.statistics.p99, '', '', '', '<= 50 ms');
add('ledger fill s (bulk insert)', reads.fillSeconds, '', '', '', '');

add('peak RSS MB (whole run)', rss.stop(), '', '', '', '<= 300 MB');
console.log(formatTable(rows));
process.exit(0);
