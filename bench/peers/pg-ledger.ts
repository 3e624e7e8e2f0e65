// Bare `pg` ledger baseline: the floor cost of persisting a job's lifecycle on PostgreSQL
// (insert, STARTED, SUCCESS), batched, with no queue logic or serialization layer on top.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

const BATCH = 1000;

/**
 * Inserts `count` PENDING rows (1000 per statement), then drains them: each batch is claimed
 * with FOR UPDATE SKIP LOCKED and marked STARTED in one statement, then marked SUCCESS in a
 * second. Times everything from the first insert to the last update.
 */
export async function barePgLedger(url: string, count: number): Promise<{ jobsPerSec: number; seconds: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE bare_jobs (id text PRIMARY KEY, name text NOT NULL, state text NOT NULL, params text,
      result text, created_at bigint NOT NULL, started_at bigint, finished_at bigint)`);
    await client.query(`CREATE INDEX bare_jobs_pending ON bare_jobs (created_at) WHERE state = 'PENDING'`);
    const t0 = performance.now();
    for (let added = 0; added < count; added += BATCH) {
      const n = Math.min(BATCH, count - added);
      const ids = Array.from({ length: n }, () => randomUUID());
      const params = ids.map((_, i) => JSON.stringify({ i: added + i }));
      await client.query(`INSERT INTO bare_jobs (id, name, state, params, created_at)
        SELECT id, 'noop', 'PENDING', p, $3 FROM unnest($1::text[], $2::text[]) AS t(id, p)`, [ids, params, Date.now()]);
    }
    let drained = 0;
    for (;;) {
      const claimed = await client.query<{ id: string }>(`UPDATE bare_jobs SET state = 'STARTED', started_at = $1 WHERE id IN (
        SELECT id FROM bare_jobs WHERE state = 'PENDING' ORDER BY created_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED) RETURNING id`, [Date.now()]);
      if (claimed.rowCount === 0) break;
      await client.query(`UPDATE bare_jobs SET state = 'SUCCESS', result = '{"ok":true}', finished_at = $1 WHERE id = ANY($2::text[])`, [
        Date.now(),
        claimed.rows.map((r) => r.id),
      ]);
      drained += claimed.rowCount ?? 0;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (drained !== count) throw new Error(`barePgLedger: drained ${drained} of ${count}`);
    return { jobsPerSec: count / seconds, seconds };
  } finally {
    await client.end();
  }
}
