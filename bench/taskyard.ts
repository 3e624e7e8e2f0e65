import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { defineTask, type AnyTaskDefinition } from '../src/core/definition.js';
import { LocalEngine } from '../src/engines/local/engine.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { createTaskyard, type Taskyard } from '../src/taskyard.js';
import { runAutocannon, type AutocannonSummary } from './lib/autocannon.js';
import { startChild, watchMemory, type BenchChild } from './lib/child.js';
import { TENANTS } from './lib/fill.js';
import { summarize, type LatencySummary } from './lib/stats.js';
import type { BenchServerOptions } from './server.js';

/** Taskyard's own measurements; bench/run.ts sets them beside the peers measured in the same run. */
const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });
const logger = pino({ level: 'silent' });

async function withYard<T>(
  concurrency: number,
  fn: (yard: Taskyard, dir: string) => Promise<T>,
  execute = true,
  tasks: AnyTaskDefinition[] = [noop],
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'taskyard-bench-'));
  const yard = await createTaskyard({
    tasks,
    categoryRules: [{ prefix: 'accounting.tasks.', category: 'reconciliation' }],
    logger,
    execute,
    store: new SqliteStore({ filename: join(dir, 'taskyard.db') }),
    engine: new LocalEngine({ concurrency }),
  });
  try {
    return await fn(yard, dir);
  } finally {
    await yard.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface EmbeddedResult {
  totalPerSec: number;
  drainPerSec: number;
  submitSeconds: number;
  drainSeconds: number;
}

/** Bulk submit N no-op tasks, then wait until the ledger says SUCCESS for all of them. */
export function embeddedThroughput(count: number, concurrency = 50): Promise<EmbeddedResult> {
  return withYard(concurrency, async (yard) => {
    let done = 0;
    let resolveDone!: () => void;
    const finished = new Promise<void>((resolve) => (resolveDone = resolve));
    yard.on('succeeded', () => ++done === count && resolveDone());
    const t0 = performance.now();
    for (let i = 0; i < count; i += 5000) {
      await yard.submitMany(Array.from({ length: Math.min(5000, count - i) }, () => ({ name: 'bench.noop' })));
    }
    const t1 = performance.now();
    await finished;
    const t2 = performance.now();
    const success = (await yard.stats()).byState.SUCCESS;
    if (success !== count) throw new Error(`ledger shows ${success} SUCCESS, expected ${count}`);
    return {
      totalPerSec: Math.round(count / ((t2 - t0) / 1000)),
      drainPerSec: Math.round(count / ((t2 - t1) / 1000)),
      submitSeconds: (t1 - t0) / 1000,
      drainSeconds: (t2 - t1) / 1000,
    };
  });
}

/** Idle enqueue-to-start latency: one task at a time, measured from submit call to the run starting. */
export function enqueueToStart(samples: number): Promise<LatencySummary> {
  return withYard(50, async (yard) => {
    const latencies: number[] = [];
    for (let i = 0; i < samples + 20; i++) {
      const t0 = performance.now();
      const started = new Promise<number>((resolve) => {
        const off = yard.on('started', () => {
          off();
          resolve(performance.now());
        });
      });
      const id = await yard.submit('bench.noop');
      const t1 = await started;
      await yard.waitFor(id);
      if (i >= 20) latencies.push(t1 - t0);
    }
    return summarize(latencies);
  });
}

/** A SQLite ledger file in a fresh directory, removed afterwards (with its -wal and -shm). */
async function withLedgerFile<T>(fn: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'taskyard-bench-'));
  try {
    return await fn(join(dir, 'taskyard.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts bench/server.ts and waits until it listens. */
async function startServer(options: BenchServerOptions): Promise<{ child: BenchChild; url: string; ids: string[]; fillSeconds: number }> {
  const child = startChild('server.ts', [JSON.stringify(options)]);
  try {
    const ready = await child.next<{ url: string; ids: string[]; fillSeconds: number }>('ready');
    return { child, ...ready };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

export interface HttpLaunchResult extends AutocannonSummary {
  /** The server process's peak RSS, MB. */
  peakRssMb: number;
}

const LAUNCH = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task_type: 'bench.noop', params: {} }) };

/** HTTP launch: the server (SQLite ledger, local engine) in one process, autocannon in another. */
export function httpLaunch(duration: number, connections = 50): Promise<HttpLaunchResult> {
  return withLedgerFile(async (sqlite) => {
    const server = await startServer({ sqlite });
    try {
      const memory = watchMemory(server.child.pid);
      const r = await runAutocannon({ url: `${server.url}/api/tasks`, ...LAUNCH, connections, duration });
      return { ...r, peakRssMb: memory.stop() };
    } finally {
      await server.child.stop();
    }
  });
}

export interface LedgerReadResult {
  rows: number;
  fillSeconds: number;
  getById: LatencySummary;
  filteredList: LatencySummary;
  statistics: LatencySummary;
  peakRssMb: number;
}

/** A fresh PostgreSQL schema for one ledger, dropped afterwards. */
async function withSchema<T>(url: string, fn: (schema: string) => Promise<T>): Promise<T> {
  const schema = `ty_bench_${randomBytes(4).toString('hex')}`;
  try {
    return await fn(schema);
  } finally {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await client.end();
    }
  }
}

/**
 * Fills a ledger with `rows` finished runs (in the server process, through its store), then times
 * reads over HTTP from this process, one request at a time: a run by id, a filtered list (tenant +
 * state + category) and the statistics.
 */
export function ledgerReads(
  ledger: { sqlite: true } | { postgres: string },
  rows: number,
  samples: number,
  budgetSeconds = Infinity,
): Promise<LedgerReadResult> {
  const measure = async (options: BenchServerOptions) => {
    const server = await startServer({ ...options, fill: rows, execute: false });
    const memory = watchMemory(server.child.pid);
    const time = async (url: () => string) => {
      const out: number[] = [];
      const deadline = performance.now() + budgetSeconds * 1000;
      // A read far over its target would take the whole run at `samples` requests: past the
      // budget it stops early (at least READ_MIN_SAMPLES), and the count says so.
      for (let i = 0; i < samples + READ_WARMUP; i++) {
        if (performance.now() > deadline && out.length >= READ_MIN_SAMPLES) break;
        const s = performance.now();
        const target = url();
        const res = await fetch(target);
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${target} answered ${res.status}`);
        if (i >= READ_WARMUP) out.push(performance.now() - s);
      }
      return summarize(out);
    };
    try {
      let k = 0;
      const getById = await time(() => `${server.url}/api/tasks/${server.ids[k++ % server.ids.length]}`);
      const filteredList = await time(() => `${server.url}/api/tasks/?company_id=${k++ % TENANTS}&state=FAILURE&category=sii&limit=50`);
      const statistics = await time(() => `${server.url}/api/tasks/statistics/`);
      return { rows, fillSeconds: server.fillSeconds, getById, filteredList, statistics, peakRssMb: memory.stop() };
    } finally {
      await server.child.stop();
    }
  };
  if ('postgres' in ledger) return withSchema(ledger.postgres, (schema) => measure({ postgres: ledger.postgres, schema }));
  return withLedgerFile((sqlite) => measure({ sqlite }));
}
/** Requests before the timed ones, so that the first compilations and cold pages are not the p99. */
const READ_WARMUP = 20;
const READ_MIN_SAMPLES = 20;

export interface FlowResult {
  tasks: number;
  seconds: number;
  tasksPerSec: number;
  /** The server process's peak RSS while the tasks flowed, MB. */
  peakRssMb: number;
  /** The largest WAL file seen (sampled every 100 ms) and the WAL at the end, MB. */
  walPeakMb: number;
  walEndMb: number;
  ledgerMb: number;
}

const FLOW_BATCH = 500;
const sizeMb = (file: string) => {
  try {
    return statSync(file).size / 2 ** 20;
  } catch {
    return 0;
  }
};

/**
 * `tasks` no-op tasks through a server process (SQLite ledger, local engine at its default
 * concurrency): launched over HTTP in batches of 500 from a load-generator process, until the
 * server has run them all. Samples the server's RSS and the WAL's size meanwhile.
 */
export function flow(tasks: number): Promise<FlowResult> {
  return withLedgerFile(async (sqlite) => {
    const server = await startServer({ sqlite, reportMs: 250 });
    let succeeded = 0;
    let progressAt = performance.now();
    server.child.each<{ succeeded: number }>('sample', (s) => {
      if (s.succeeded > succeeded) progressAt = performance.now();
      succeeded = s.succeeded;
    });
    let walPeakMb = 0;
    const wal = setInterval(() => (walPeakMb = Math.max(walPeakMb, sizeMb(`${sqlite}-wal`))), 100);
    try {
      const memory = watchMemory(server.child.pid);
      const t0 = performance.now();
      const body = JSON.stringify({ tasks: Array.from({ length: FLOW_BATCH }, () => ({ task_type: 'bench.noop', params: {} })) });
      const launched = await runAutocannon({ url: `${server.url}/api/tasks/batch`, ...LAUNCH, body, connections: 2, amount: Math.ceil(tasks / FLOW_BATCH) });
      if (launched.non2xx || launched.errors) throw new Error(`flow: ${launched.non2xx} non-2xx, ${launched.errors} errors`);
      const total = Math.ceil(tasks / FLOW_BATCH) * FLOW_BATCH;
      while (succeeded < total) {
        if (performance.now() - progressAt > 60_000) throw new Error(`flow: stuck at ${succeeded} of ${total} runs`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const seconds = (performance.now() - t0) / 1000;
      const peakRssMb = memory.stop();
      return { tasks: total, seconds, tasksPerSec: total / seconds, peakRssMb, walPeakMb, walEndMb: sizeMb(`${sqlite}-wal`), ledgerMb: sizeMb(sqlite) };
    } finally {
      clearInterval(wal);
      await server.child.stop();
    }
  });
}
