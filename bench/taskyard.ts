import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defineTask, type AnyTaskDefinition } from '../src/core/definition.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import { LocalEngine } from '../src/engines/local/engine.js';
import { serve } from '../src/server.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { createTaskyard, type Taskyard } from '../src/taskyard.js';
import { runAutocannon, type AutocannonSummary } from './lib/autocannon.js';
import { summarize, type LatencySummary } from './lib/stats.js';

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

/** HTTP launch under autocannon (50 connections), server in this process as for the hello peer. */
export function httpLaunch(duration: number): Promise<AutocannonSummary> {
  return withYard(50, async (yard) => {
    const server = await serve({ yard, host: '127.0.0.1', port: 0, apiKeys: [], handleSignals: false });
    try {
      return await runAutocannon({
        url: `${server.url}/api/tasks`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ task_type: 'bench.noop', params: {} }),
        connections: 50,
        duration,
      });
    } finally {
      await server.app.close();
    }
  });
}

export interface LedgerReadResult {
  rows: number;
  fillSeconds: number;
  getById: LatencySummary;
  filteredList: LatencySummary;
  statistics: LatencySummary;
}

const STATES = ['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
const NAMES = ['sii.sync_documents', 'sii.sync_f29', 'calculate_rating', 'accounting.tasks.compare_two_engines_task'];
/** The filled ledger's task types are registered, as in a real deployment, so its categories are known filters. */
const FILLED = NAMES.map((name) => defineTask({ name, async run() { return null; } }));

/** Fills a ledger with `rows` finished runs, then times reads over HTTP, one request at a time. */
export function ledgerReads(rows: number, samples: number): Promise<LedgerReadResult> {
  return withYard(
    1,
    async (yard) => {
      const t0 = performance.now();
      const ids: string[] = [];
      const base = Date.now() - rows;
      for (let i = 0; i < rows; i += 10_000) {
        const batch: TaskRecord[] = [];
        for (let j = i; j < Math.min(rows, i + 10_000); j++) {
          const at = base + j;
          const name = NAMES[j % NAMES.length]!;
          const id = uuidv7(at);
          if (j % 997 === 0) ids.push(id);
          batch.push({
            id, name, category: name.startsWith('accounting.') ? 'reconciliation' : name.split('.')[0]!, displayName: name,
            state: STATES[j % STATES.length]!, progress: 100, progressMessage: null, tenantId: String(j % 100),
            params: { company_id: String(j % 100) }, result: { ok: true }, error: null, traceback: null, meta: null,
            attempt: 1, maxAttempts: 3, priority: 0, queue: 'default', route: 'light', engine: 'local', worker: 'bench',
            idempotencyKey: null, runAt: at, cancelRequested: null, revokeReason: null, createdAt: at, startedAt: at,
            finishedAt: at + 5, updatedAt: at + 5,
          });
        }
        await yard.store.insert(batch);
      }
      const fillSeconds = (performance.now() - t0) / 1000;
      const server = await serve({ yard, host: '127.0.0.1', port: 0, apiKeys: [], handleSignals: false });
      const time = async (url: () => string) => {
        const out: number[] = [];
        for (let i = 0; i < samples; i++) {
          const s = performance.now();
          const res = await fetch(url());
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${url()} answered ${res.status}`);
          out.push(performance.now() - s);
        }
        return summarize(out);
      };
      try {
        let k = 0;
        const getById = await time(() => `${server.url}/api/tasks/${ids[k++ % ids.length]}`);
        const filteredList = await time(
          () => `${server.url}/api/tasks/?company_id=${k++ % 100}&state=FAILURE&task_type=sii&limit=50`,
        );
        const statistics = await time(() => `${server.url}/api/tasks/statistics/`);
        return { rows, fillSeconds, getById, filteredList, statistics };
      } finally {
        await server.app.close();
      }
    },
    false,
    FILLED,
  );
}
