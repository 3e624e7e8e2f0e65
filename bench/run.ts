/**
 * `npm run bench`: every figure of the performance targets beside its target and a verdict, from
 * one run, with Taskyard's peers measured in the same run. Servers under test, load generators
 * and measured sections each run in a process of their own (bench/lib/child.ts); each
 * Taskyard/peer pair runs BENCH_PAIRS times alternately (A B A B) and the median ratio counts.
 *
 * `npm run bench -- --quick` (or BENCH_QUICK=1): small sizes, one pair, for the development loop.
 * Sizes: BENCH_TASKS, BENCH_HTTP_SECONDS, BENCH_LEDGER_ROWS, BENCH_READ_SAMPLES (at most
 * BENCH_READ_SECONDS of each kind of read), BENCH_FLOW_TASKS,
 * BENCH_PG_TASKS, BENCH_MP_TASKS, BENCH_SCALEOUT_TASKS (BENCH_SCALEOUT_CONCURRENCY per worker, default 25;
 * BENCH_SCALEOUT_PREFETCH for the second tracked drain, default the concurrency), BENCH_PAIRS. BENCH_ONLY=embedded,latency,
 * http,reads,pgreads,flow,scaleout,ledgers runs only those sections. Needs Redis on
 * 127.0.0.1:6379 and PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).
 */
import { availableParallelism, loadavg } from 'node:os';
import { runChild } from './lib/child.js';
import { formatTable, median, type Cell } from './lib/stats.js';
import type { LatencySummary } from './lib/stats.js';
import { fastifyHello, type HttpResult } from './peers/fastify-hello.js';
import type { ThroughputResult } from './peers/sqlite-ledger.js';
import { postgresThroughput, sqliteProcesses } from './ledgers/run.js';
import { scaleOut } from './scaleout/run.js';
import type { SectionName } from './section.js';
import { flow, httpLaunch, ledgerReads, type EmbeddedResult, type HttpLaunchResult, type LedgerReadResult } from './taskyard.js';

const QUICK = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick');
const size = (name: string, full: number, quick: number) => Number(process.env[name] ?? (QUICK ? quick : full));
const TASKS = size('BENCH_TASKS', 100_000, 10_000);
const HTTP_SECONDS = size('BENCH_HTTP_SECONDS', 5, 2);
const LEDGER_ROWS = size('BENCH_LEDGER_ROWS', 1_000_000, 20_000);
const READ_SAMPLES = size('BENCH_READ_SAMPLES', 500, 100);
const READ_SECONDS = size('BENCH_READ_SECONDS', 60, 10);
const FLOW_TASKS = size('BENCH_FLOW_TASKS', 1_000_000, 20_000);
const PG_TASKS = size('BENCH_PG_TASKS', 20_000, 2_000);
const MP_TASKS = size('BENCH_MP_TASKS', 30_000, 3_000);
const SCALEOUT_TASKS = size('BENCH_SCALEOUT_TASKS', 50_000, 5_000);
const PAIRS = size('BENCH_PAIRS', 2, 1);
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const wanted = (section: string) => !ONLY || ONLY.has(section);

/** A target: its text in the table, and whether a figure meets it. */
interface Target {
  text: string;
  met(value: number): boolean;
}
const atLeast = (bound: number, unit: string): Target => ({ text: `>= ${bound}${unit}`, met: (v) => v >= bound });
const atMost = (bound: number, unit: string): Target => ({ text: `<= ${bound}${unit}`, met: (v) => v <= bound });

const rows: Record<string, Cell>[] = [];
const fixed = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
const x = (n: number) => `${n.toFixed(2)}x`;
/**
 * One line of the table. `judged` is the figure the target applies to (the ratio for a ratio
 * target); `runs` lists every pair's figure when there were several.
 */
function add(metric: string, taskyard: Cell, opts: { peer?: string; peerValue?: Cell; ratio?: number; runs?: number[]; target?: Target; judged?: number } = {}) {
  const judged = opts.judged ?? opts.ratio ?? (typeof taskyard === 'number' ? taskyard : NaN);
  rows.push({
    metric,
    taskyard,
    peer: opts.peer ?? '',
    'peer value': opts.peerValue ?? '',
    ratio: opts.ratio === undefined ? '' : x(opts.ratio),
    pairs: opts.runs && opts.runs.length > 1 ? opts.runs.map((r) => (opts.ratio === undefined ? fixed(r) : x(r))).join(', ') : '',
    target: opts.target?.text ?? '',
    verdict: opts.target ? (opts.target.met(judged) ? 'met' : 'NOT MET') : '',
  });
}
const step = (text: string) => process.stderr.write(`bench: ${text}\n`);
const section = <T>(name: SectionName, n: number) => runChild<T>('section.ts', [name, String(n)]);
/** Runs `a` then `b`, PAIRS times (A B A B ...), each in a fresh process. */
async function pairs<A, B>(a: () => Promise<A>, b: () => Promise<B>): Promise<Array<[A, B]>> {
  const out: Array<[A, B]> = [];
  for (let i = 0; i < PAIRS; i++) out.push([await a(), await b()]);
  return out;
}

/** Runs a wanted section; one that fails says so in the table and the others still run. */
async function measure(name: string, fn: () => Promise<void>): Promise<void> {
  if (!wanted(name)) return;
  try {
    await fn();
  } catch (error) {
    step(`${name} failed: ${(error as Error).stack}`);
    rows.push({ metric: `${name}: failed (${(error as Error).message})`, verdict: 'NOT MET' });
  }
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
step(`${QUICK ? 'quick' : 'full'} run, ${PAIRS} pair(s) per comparison, ${availableParallelism()} cores, Node ${process.version}, load average ${load()}`);

await measure('embedded', async () => {
  step(`embedded throughput, ${TASKS} no-op tasks, against the bare SQLite ledger and raw BullMQ (concurrency 50 each)`);
  const runs: Array<[EmbeddedResult, [ThroughputResult, ThroughputResult]]> = await pairs(
    () => section<EmbeddedResult>('embedded', TASKS),
    async () => [await section<ThroughputResult>('bare-sqlite', TASKS), await section<ThroughputResult>('raw-bullmq', TASKS)] as [ThroughputResult, ThroughputResult],
  );
  const total = runs.map(([t, [bare]]) => t.totalPerSec / bare.jobsPerSec);
  const drain = runs.map(([t, [, bull]]) => t.drainPerSec / bull.jobsPerSec);
  add('embedded tasks/s, submit + drain', median(runs.map(([t]) => t.totalPerSec)), {
    peer: 'bare SQLite ledger', peerValue: median(runs.map(([, [b]]) => b.jobsPerSec)), ratio: median(total), runs: total, target: atLeast(0.6, 'x'),
  });
  add('embedded tasks/s, drain only', median(runs.map(([t]) => t.drainPerSec)), {
    peer: 'raw BullMQ drain', peerValue: median(runs.map(([, [, r]]) => r.jobsPerSec)), ratio: median(drain), runs: drain, target: atLeast(1.5, 'x'),
  });
});

await measure('latency', async () => {
  step('enqueue-to-start latency, idle, one task at a time');
  const latency = await section<LatencySummary>('enqueue-to-start', 300);
  const bull = await section<LatencySummary>('bullmq-latency', 300);
  add('enqueue->start p50 ms (idle)', latency.p50, { peer: 'raw BullMQ', peerValue: bull.p50 });
  add('enqueue->start p99 ms (idle)', latency.p99, { peer: 'raw BullMQ', peerValue: bull.p99 });
});

await measure('http', async () => {
  step(`HTTP launch against Fastify hello: ${HTTP_SECONDS} s each, 50 connections, server and autocannon in processes of their own`);
  const runs: Array<[HttpLaunchResult, HttpResult]> = await pairs(() => httpLaunch(HTTP_SECONDS), () => fastifyHello({ duration: HTTP_SECONDS }));
  const ratios = runs.map(([t, h]) => t.requestsPerSec / h.requestsPerSec);
  add('HTTP launch req/s (50 connections)', median(runs.map(([t]) => t.requestsPerSec)), {
    peer: 'Fastify hello', peerValue: median(runs.map(([, h]) => h.requestsPerSec)), ratio: median(ratios), runs: ratios, target: atLeast(0.5, 'x'),
  });
  const p99s = runs.map(([t]) => t.p99);
  add('HTTP launch p99 ms', median(p99s), { peer: 'Fastify hello', peerValue: median(runs.map(([, h]) => h.p99)), runs: p99s, target: atMost(25, ' ms') });
  add('HTTP launch server peak RSS MB', Math.max(...runs.map(([t]) => t.peakRssMb)), { peer: 'Fastify hello', peerValue: Math.max(...runs.map(([, h]) => h.peakRssMb)) });
  const failed = runs.reduce((n, [t]) => n + t.non2xx + t.errors, 0);
  add('HTTP launch non-2xx + errors', failed, { target: atMost(0, '') });
});

const reads = (store: string, r: LedgerReadResult) => {
  const at = `@${r.rows.toLocaleString('en-US')} runs, ${store}`;
  const n = (l: LatencySummary) => (l.count < READ_SAMPLES ? ` (${l.count} requests in ${READ_SECONDS} s)` : '');
  add(`GET /api/tasks/{id} p99 ms ${at}${n(r.getById)}`, r.getById.p99, { target: atMost(5, ' ms') });
  add(`filtered list p99 ms (tenant+state+category) ${at}${n(r.filteredList)}`, r.filteredList.p99, { target: atMost(20, ' ms') });
  add(`statistics p99 ms ${at}${n(r.statistics)}`, r.statistics.p99, { target: atMost(20, ' ms') });
  add(`ledger fill s (store insert, 10k a batch), ${store}`, r.fillSeconds);
  add(`server peak RSS MB (fill + reads), ${store}`, r.peakRssMb);
};

await measure('reads', async () => {
  step(`reads at ${LEDGER_ROWS} runs on SQLite (filling first), ${READ_SAMPLES} requests each, one at a time`);
  reads('SQLite', await ledgerReads({ sqlite: true }, LEDGER_ROWS, READ_SAMPLES, READ_SECONDS));
});

await measure('pgreads', async () => {
  step(`reads at ${LEDGER_ROWS} runs on PostgreSQL (a fresh schema, filling first), ${READ_SAMPLES} requests each`);
  reads('PostgreSQL', await ledgerReads({ postgres: DATABASE_URL }, LEDGER_ROWS, READ_SAMPLES, READ_SECONDS));
});

await measure('flow', async () => {
  step(`${FLOW_TASKS} no-op tasks through a server process (HTTP batches of 500, SQLite ledger), sampling its RSS and the WAL`);
  const f = await flow(FLOW_TASKS);
  const of = `${f.tasks.toLocaleString('en-US')} tasks through the server`;
  add(`server peak RSS MB, ${of}`, f.peakRssMb, { target: atMost(300, ' MB') });
  add(`WAL peak MB, ${of}`, f.walPeakMb, { target: atMost(64, ' MB') });
  add('WAL MB at the end', f.walEndMb, { target: atMost(64, ' MB') });
  add('ledger file MB at the end', f.ledgerMb);
  add('tasks/s, launched over HTTP and run', f.tasksPerSec);
});

await measure('scaleout', async () => {
  step(`scale-out: ${SCALEOUT_TASKS} no-op tasks, tracked BullMQ (2 worker processes, PostgreSQL ledger) vs raw BullMQ (2 worker processes)`);
  const scaleOutConcurrency = Number(process.env.BENCH_SCALEOUT_CONCURRENCY ?? 25);
  const prefetch = Number(process.env.BENCH_SCALEOUT_PREFETCH ?? scaleOutConcurrency);
  const so = await scaleOut(SCALEOUT_TASKS, 2, scaleOutConcurrency, prefetch);
  const total = so.workers * so.concurrency;
  add(`tracked BullMQ tasks/s (2 workers x ${so.concurrency})`, so.trackedPerSec, {
    peer: `raw BullMQ, 2 workers x ${so.concurrency}`, peerValue: so.rawPerSec, ratio: so.trackedPerSec / so.rawPerSec, target: atLeast(0.8, 'x'),
  });
  add(`tracked BullMQ, prefetch ${so.prefetch}, tasks/s`, so.prefetchedPerSec, {
    peer: `raw BullMQ, 2 workers x ${so.concurrency}`, peerValue: so.rawPerSec, ratio: so.prefetchedPerSec / so.rawPerSec, target: atLeast(0.8, 'x'),
  });
  add('tracked BullMQ enqueue->start p50 ms', so.latency.p50, { target: atMost(10, ' ms') });
  add('tracked BullMQ enqueue->start p99 ms', so.latency.p99);
  const cpu = (c: typeof so.cpu.raw) => `${Math.round(c.total)} (workers ${Math.round(c.workers)}, PostgreSQL ${Math.round(c.postgres)}, Redis ${Math.round(c.redis)}, API ${Math.round(c.api)})`;
  add('CPU ms per 1000 tasks, tracked', cpu(so.cpu.tracked), { peer: 'raw BullMQ', peerValue: cpu(so.cpu.raw), ratio: so.cpu.tracked.total / so.cpu.raw.total });
  add('CPU ms per 1000 tasks, tracked with prefetch', cpu(so.cpu.prefetched));
  add(`connections during the drain (concurrency ${total})`, `Redis +${so.redisConnections}, PostgreSQL ${so.pgConnections}`);
});

await measure('ledgers', async () => {
  step(`local engine on the PostgreSQL store, ${PG_TASKS} no-op tasks, and a bare pg ledger`);
  const onPg = await postgresThroughput(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', PG_TASKS);
  add('local engine on PostgreSQL tasks/s', onPg.taskyard.tasksPerSec, { peer: 'bare pg ledger', peerValue: onPg.bare, ratio: onPg.taskyard.tasksPerSec / onPg.bare, target: atLeast(0.5, 'x') });
  add('PostgreSQL connections (local engine, one process)', onPg.taskyard.connections ?? '');
  step(`two worker processes on one SQLite file vs one, ${MP_TASKS} no-op tasks each, twice interleaved`);
  const mp = await sqliteProcesses(MP_TASKS);
  add('2 processes, one SQLite file, tasks/s', mp.two, { peer: '1 process, same file', peerValue: mp.one, ratio: mp.two / mp.one, target: atLeast(0.8, 'x') });
});

console.log(formatTable(rows));
const missed = rows.filter((r) => r.verdict === 'NOT MET').length;
const judgedCount = rows.filter((r) => r.verdict).length;
console.log(`\n${judgedCount - missed} of ${judgedCount} targets met${QUICK ? ' (quick mode: sizes too small to judge)' : ''}; load average at the end ${load()}.`);
process.exit(0);
