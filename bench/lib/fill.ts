/**
 * A ledger of finished runs for the read figures: four task types over two categories of the
 * seeds' world, 100 tenants (companies), mostly SUCCESS with some FAILURE and REVOKED, one run
 * a millisecond up to now. Written through the store's own insert, so whatever the store keeps
 * beside its rows (timelines, counts) is kept for these too.
 */
import { defineTask } from '../../src/core/definition.js';
import { uuidv7 } from '../../src/core/ids.js';
import type { TaskRecord } from '../../src/core/record.js';
import type { TaskStore } from '../../src/store/types.js';

const STATES = ['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
const NAMES = ['sii.sync_documents', 'sii.sync_f29', 'calculate_rating', 'accounting.tasks.compare_two_engines_task'];
export const TENANTS = 100;
/** The filled ledger's task types are registered, as in a real deployment, so its categories are known filters. */
export const FILLED_TASKS = NAMES.map((name) => defineTask({ name, async run() { return null; } }));
export const CATEGORY_RULES = [{ prefix: 'accounting.tasks.', category: 'reconciliation' }];

const BATCH = 10_000;

/** Inserts `rows` finished runs; returns a sample of their ids (about one in a thousand) for by-id reads. */
export async function fillLedger(store: TaskStore, rows: number): Promise<string[]> {
  const ids: string[] = [];
  const base = Date.now() - rows;
  // One batch commits while the next is built: the fill costs the store's time, not the bench's.
  let committing: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < rows; i += BATCH) {
    const batch: TaskRecord[] = [];
    for (let j = i; j < Math.min(rows, i + BATCH); j++) {
      const at = base + j;
      const name = NAMES[j % NAMES.length]!;
      const id = uuidv7(at);
      if (j % 997 === 0) ids.push(id);
      batch.push({
        id, name, category: name.startsWith('accounting.') ? 'reconciliation' : name.split('.')[0]!, displayName: name,
        state: STATES[j % STATES.length]!, progress: 100, progressMessage: null, tenantId: String(j % TENANTS),
        params: { company_id: String(j % TENANTS) }, result: { ok: true }, error: null, traceback: null, meta: null,
        attempt: 1, maxAttempts: 3, priority: 0, queue: 'default', route: 'light', engine: 'local', worker: 'bench',
        idempotencyKey: null, runAt: at, cancelRequested: null, revokeReason: null, createdAt: at, startedAt: at,
        finishedAt: at + 5, updatedAt: at + 5,
      });
    }
    await committing;
    committing = store.insert(batch);
  }
  await committing;
  return ids;
}
