/**
 * Store-level read timings at a large ledger, without HTTP: `npx tsx bench/probes/reads.ts [file]`.
 * Fills the file like the bench's read section (PROBE_ROWS, default 1,000,000) unless it already
 * holds runs, then times get-by-id, the filtered list and statistics, and prints their query plans.
 */
import { existsSync } from 'node:fs';
import { uuidv7 } from '../../src/core/ids.js';
import type { TaskRecord } from '../../src/core/record.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { summarize } from '../lib/stats.js';

const file = process.argv[2] ?? 'probe-ledger.db';
const rows = Number(process.env.PROBE_ROWS ?? 1_000_000);
const STATES = ['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
const NAMES = ['sii.sync_documents', 'sii.sync_f29', 'calculate_rating', 'accounting.tasks.compare_two_engines_task'];

const fresh = !existsSync(file);
const store = new SqliteStore({ filename: file });
await store.migrate();
if (fresh) {
  const base = Date.now() - rows;
  for (let i = 0; i < rows; i += 10_000) {
    const batch: TaskRecord[] = [];
    for (let j = i; j < Math.min(rows, i + 10_000); j++) {
      const at = base + j;
      const name = NAMES[j % NAMES.length]!;
      batch.push({
        id: uuidv7(at), name, category: name.startsWith('accounting.') ? 'reconciliation' : name.split('.')[0]!, displayName: name,
        state: STATES[j % STATES.length]!, progress: 100, progressMessage: null, tenantId: String(j % 100),
        params: { company_id: String(j % 100) }, result: { ok: true }, error: null, traceback: null, meta: null,
        attempt: 1, maxAttempts: 3, priority: 0, queue: 'default', route: 'light', engine: 'local', worker: 'bench',
        idempotencyKey: null, runAt: at, cancelRequested: null, revokeReason: null, createdAt: at, startedAt: at,
        finishedAt: at + 5, updatedAt: at + 5,
      });
    }
    await store.insert(batch);
  }
}
const ids = store.db.prepare('SELECT id FROM taskyard_tasks WHERE rowid % 997 = 0').pluck().all() as string[];
const time = async (label: string, fn: (i: number) => Promise<unknown>, samples = 300) => {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  const s = summarize(out);
  const sorted = [...out].sort((a, b) => a - b);
  const p90 = sorted[Math.floor(sorted.length * 0.9)]!;
  console.log(`${label.padEnd(14)} p50 ${s.p50.toFixed(2)} ms  p90 ${p90.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms`);
};
await time('get', (i) => store.get(ids[i % ids.length]!, '*'));
await time('filtered list', (i) => store.list({ tenantId: String(i % 100), states: ['FAILURE'], categories: ['sii'], limit: 50 }, '*'));
await time('stats', () => store.stats('*', Date.now()), 100);
await time('stats tenant', (i) => store.stats([String(i % 100)], Date.now()), 100);
await store.close();
