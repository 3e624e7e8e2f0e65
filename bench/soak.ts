/**
 * `npm run soak`: a server under steady load for a while, to show that its memory and its files
 * stay flat. The server (SQLite ledger, local engine, a short retention so the pruner reaches a
 * steady state) and the load generator run in processes of their own.
 *
 * First it measures the server's max launch rate (SOAK_CALIBRATE_SECONDS, default 10, on a
 * server of its own), then launches at SOAK_LOAD (default 0.5) of it, or at SOAK_RATE req/s, for
 * SOAK_SECONDS (default 600). Every 10 s it prints the server's RSS and heap, the ledger and WAL
 * sizes and the launch p99 of those 10 s; at the end, for each, "flat" or "growing" from the
 * last third of the series against the middle third. SOAK_RETENTION_SECONDS (default: a fifth of the
 * run, at most 2m) is how long finished runs are kept; the pruner looks four times as often.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAutocannon, runAutocannonWindows } from './lib/autocannon.js';
import { processMemory, startChild, watchMemory, type BenchChild } from './lib/child.js';
import { formatTable, median, type Cell } from './lib/stats.js';
import type { BenchServerOptions } from './server.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const CALIBRATE_SECONDS = Number(process.env.SOAK_CALIBRATE_SECONDS ?? 10);
const LOAD = Number(process.env.SOAK_LOAD ?? 0.5);
const WINDOW_SECONDS = 10;
const RETENTION_SECONDS = Number(process.env.SOAK_RETENTION_SECONDS ?? Math.min(120, Math.max(10, Math.round(SECONDS / 5))));
const LAUNCH = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task_type: 'bench.noop', params: {} }) };
const step = (text: string) => process.stderr.write(`soak: ${text}\n`);

const sizeMb = (file: string) => {
  try {
    return statSync(file).size / 2 ** 20;
  } catch {
    return 0;
  }
};

async function withServer<T>(options: Omit<BenchServerOptions, 'sqlite'>, fn: (server: BenchChild, url: string, file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'taskyard-soak-'));
  const file = join(dir, 'taskyard.db');
  const server = startChild('server.ts', [JSON.stringify({ ...options, sqlite: file })]);
  try {
    const { url } = await server.next<{ url: string }>('ready');
    return await fn(server, url, file);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function maxLaunchRate(): Promise<number> {
  return withServer({}, async (_server, url) => {
    const r = await runAutocannon({ url: `${url}/api/tasks`, ...LAUNCH, connections: 50, duration: CALIBRATE_SECONDS });
    return r.requestsPerSec;
  });
}

interface Point {
  t: number;
  rssMb: number;
  heapMb: number;
  ledgerMb: number;
  walMb: number;
  perSec: number;
  p99: number;
  succeeded: number;
}

/**
 * "flat" when the last third's median is within 10% of the middle third's (or within `slack`,
 * for figures small enough that 10% is noise: a WAL of a few MB, a p99 of a few ms). Medians,
 * because the heap and the RSS are a garbage collector's sawtooth: a mean moves with where in
 * the cycle the samples fall, while a leak lifts the whole third.
 */
function verdict(series: number[], slack: number): { middle: number; last: number; verdict: string } {
  const third = Math.floor(series.length / 3);
  const middle = median(series.slice(third, 2 * third));
  const last = median(series.slice(2 * third));
  const flat = last <= middle * 1.1 || last - middle <= slack;
  return { middle, last, verdict: flat ? 'flat' : 'growing' };
}

step(`calibrating: max launch rate over ${CALIBRATE_SECONDS} s, 50 connections (load ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
const max = process.env.SOAK_RATE ? null : await maxLaunchRate();
const rate = max === null ? Number(process.env.SOAK_RATE) : Math.max(1, Math.round(max * LOAD));
step(`${max === null ? '' : `max ${Math.round(max)} launches/s; `}soaking at ${rate}/s for ${SECONDS} s, retention ${RETENTION_SECONDS} s`);

const points: Point[] = [];
let started = 0;
const pruner = { retention: `${RETENTION_SECONDS}s`, interval: `${Math.max(1, Math.round(RETENTION_SECONDS / 4))}s` };
const peakMb = await withServer({ reportMs: 1000, pruner }, async (server, url, file) => {
  let heapMb = 0;
  let succeeded = 0;
  server.each<{ heapUsedMb: number; succeeded: number }>('sample', (s) => ({ heapUsedMb: heapMb, succeeded } = s));
  const memory = watchMemory(server.pid);
  started = performance.now();
  console.log(['t s', 'RSS MB', 'heap MB', 'ledger MB', 'WAL MB', 'launches/s', 'p99 ms', 'runs done'].join('\t'));
  const r = await runAutocannonWindows(
    // As many connections as the calibration: a connection has one request in flight, so fewer
    // would cap the rate below the one asked for whenever latency rises.
    { url: `${url}/api/tasks`, ...LAUNCH, connections: 50, duration: SECONDS, overallRate: rate, windowSeconds: WINDOW_SECONDS },
    (w) => {
      const point: Point = {
        t: Math.round((performance.now() - started) / 1000),
        rssMb: processMemory(server.pid)?.rssMb ?? NaN,
        heapMb,
        ledgerMb: sizeMb(file),
        walMb: sizeMb(`${file}-wal`),
        perSec: w.perSec,
        p99: w.p99,
        succeeded,
      };
      points.push(point);
      console.log([point.t, point.rssMb.toFixed(1), point.heapMb.toFixed(1), point.ledgerMb.toFixed(1), point.walMb.toFixed(1), Math.round(point.perSec), point.p99.toFixed(1), point.succeeded].join('\t'));
    },
  );
  if (r.non2xx || r.errors) step(`${r.non2xx} non-2xx answers, ${r.errors} errors`);
  return memory.stop();
});

const rows: Record<string, Cell>[] = (
  [
    ['server RSS MB', points.map((p) => p.rssMb), 10],
    ['server heap MB', points.map((p) => p.heapMb), 5],
    ['ledger file MB', points.map((p) => p.ledgerMb), 2],
    ['WAL MB', points.map((p) => p.walMb), 4],
    ['launch p99 ms', points.map((p) => p.p99), 5],
  ] as const
).map(([figure, series, slack]) => ({ figure, ...verdict([...series], slack) }));
console.log(`\n${formatTable(rows)}`);
console.log(`\nserver peak RSS ${peakMb.toFixed(1)} MB; ${rows.every((r) => r.verdict === 'flat') ? 'flat' : 'growing'} (last third against the middle third, load ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
process.exit(0);
