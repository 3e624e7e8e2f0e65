// Bare better-sqlite3 ledger baseline: the floor cost of persisting a job's lifecycle
// (insert, STARTED, SUCCESS) with no queue logic, serialization layer or ORM on top.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const BATCH = 1000;

export interface ThroughputResult {
  jobsPerSec: number;
  seconds: number;
}

/**
 * Inserts `count` PENDING rows (1000 per transaction), then drains them: each batch of
 * 1000 is claimed through the state index and marked STARTED in one transaction, then
 * marked SUCCESS in a second one (a real worker records the start before running the job).
 * Times everything from first insert to last update.
 */
export function bareSqliteLedger(count: number): ThroughputResult {
  const dir = mkdtempSync(join(tmpdir(), 'taskyard-bench-'));
  const db = new Database(join(dir, 'ledger.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        params TEXT,
        result TEXT,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
      );
      CREATE INDEX jobs_state ON jobs(state);
    `);

    const insert = db.prepare(
      `INSERT INTO jobs (id, name, state, params, created_at) VALUES (?, 'noop', 'PENDING', ?, ?)`,
    );
    const claim = db.prepare(`SELECT id FROM jobs WHERE state = 'PENDING' LIMIT ${BATCH}`).pluck();
    const markStarted = db.prepare(`UPDATE jobs SET state = 'STARTED', started_at = ? WHERE id = ?`);
    const markSuccess = db.prepare(`UPDATE jobs SET state = 'SUCCESS', result = ?, finished_at = ? WHERE id = ?`);

    const insertBatch = db.transaction((n: number) => {
      const now = Date.now();
      for (let i = 0; i < n; i++) insert.run(randomUUID(), JSON.stringify({ i }), now);
    });
    const startBatch = db.transaction((): string[] => {
      const ids = claim.all() as string[];
      const now = Date.now();
      for (const id of ids) markStarted.run(now, id);
      return ids;
    });
    const finishBatch = db.transaction((ids: string[]) => {
      const now = Date.now();
      for (const id of ids) markSuccess.run('{"ok":true}', now, id);
    });

    const t0 = performance.now();
    for (let added = 0; added < count; added += BATCH) insertBatch(Math.min(BATCH, count - added));
    let drained = 0;
    for (let ids = startBatch(); ids.length > 0; ids = startBatch()) {
      finishBatch(ids);
      drained += ids.length;
    }
    const seconds = (performance.now() - t0) / 1000;

    if (drained !== count) throw new Error(`bareSqliteLedger: drained ${drained} of ${count}`);
    return { jobsPerSec: count / seconds, seconds };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true }); // removes ledger.db plus -wal/-shm
  }
}
