/**
 * Many processes, one ledger: throughput of the local engine on PostgreSQL (beside a bare `pg`
 * ledger measured in the same run), and of two worker processes sharing one SQLite file against
 * one process on the same work.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { defineTask } from '../../src/core/definition.js';
import { createStore } from '../../src/store/index.js';
import { createTaskyard } from '../../src/taskyard.js';
import { barePgLedger } from '../peers/pg-ledger.js';

const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });
const logger = pino({ level: 'silent' });
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface LedgerThroughput {
  tasksPerSec: number;
  /** PostgreSQL connections open to the bench database at the end of the run. */
  connections?: number;
}

/** Starts `n` worker processes on `url` and resolves once each has said it is ready. */
async function startWorkers(url: string, n: number, concurrency: number): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: n }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, url, String(concurrency)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      return new Promise<ChildProcess>((resolve, reject) => {
        child.stdout!.once('data', () => resolve(child));
        child.once('exit', (code) => reject(new Error(`bench worker exited with ${code}`)));
      });
    }),
  );
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((child) => new Promise<void>((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  })));
}

/**
 * Submits `count` no-op tasks from an API-only yard on `url` and waits until the ledger shows
 * them all SUCCESS, executed by `workers` processes (0: by the submitting process itself).
 */
async function drainThrough(url: string, count: number, workers: number, concurrency = 50, onDone?: () => Promise<void>): Promise<number> {
  const children = workers > 0 ? await startWorkers(url, workers, concurrency) : [];
  const { LocalEngine } = await import('../../src/engines/local/engine.js');
  const yard = await createTaskyard({
    tasks: [noop],
    logger,
    store: createStore(url),
    engine: new LocalEngine({ concurrency }),
    execute: workers === 0,
  });
  try {
    const t0 = performance.now();
    for (let i = 0; i < count; i += 5000) {
      await yard.submitMany(Array.from({ length: Math.min(5000, count - i) }, () => ({ name: 'bench.noop' })));
    }
    for (;;) {
      const { byState } = await yard.stats();
      if (byState.SUCCESS === count) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - t0) / 1000;
    await onDone?.();
    return Math.round(count / seconds);
  } finally {
    await yard.close();
    await stopWorkers(children);
  }
}

async function withDatabase<T>(adminUrl: string, fn: (url: string, name: string) => Promise<T>): Promise<T> {
  const name = `ty_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString(), name);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** The local engine on the PostgreSQL store, in one process, and the bare `pg` ledger. */
export async function postgresThroughput(adminUrl: string, count: number): Promise<{ taskyard: LedgerThroughput; bare: number }> {
  const taskyard = await withDatabase(adminUrl, async (url, name) => {
    let connections = 0;
    const tasksPerSec = await drainThrough(url, count, 0, 50, async () => {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
      connections = rows[0].n;
      await admin.end();
    });
    return { tasksPerSec, connections };
  });
  const bare = await withDatabase(adminUrl, (url) => barePgLedger(url, count));
  return { taskyard, bare: Math.round(bare.jobsPerSec) };
}

/** Two worker processes sharing one SQLite file, against one worker process on the same work. */
export async function sqliteProcesses(count: number): Promise<{ one: number; two: number }> {
  const run = async (workers: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'taskyard-bench-mp-'));
    try {
      return await drainThrough(`sqlite:${join(dir, 'taskyard.db')}`, count, workers);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // Interleaved, so drift on the machine hits both sides alike.
  const one = [await run(1)];
  const two = [await run(2)];
  one.push(await run(1));
  two.push(await run(2));
  const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  return { one: mean(one), two: mean(two) };
}
