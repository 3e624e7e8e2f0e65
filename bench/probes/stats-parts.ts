/** Each query of SQLite statistics timed apart, on a ledger made by reads.ts: `npx tsx bench/probes/stats-parts.ts file`. */
import Database from 'better-sqlite3';

const db = new Database(process.argv[2]!, { readonly: true });
const now = Date.now();
const first = (since: number) => Math.floor(since / 60_000) + 1;
const parts: Record<string, () => unknown> = {
  counts: () => db.prepare(`SELECT name, category, state, tenant_id <> '' AS tenanted, sum(count) FROM taskyard_counts GROUP BY 1, 2, 3, 4`).all(),
  durations: () => db.prepare(`SELECT finished_at - started_at AS d FROM taskyard_tasks INDEXED BY taskyard_tasks_finished
    WHERE finished_at IS NOT NULL AND finished_at >= ? AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT 5000`).all(now - 3_600_000),
  'rolling sums': () => db.prepare(`SELECT (SELECT sum(count) FROM taskyard_finished WHERE minute >= ?), (SELECT sum(count) FROM taskyard_finished WHERE minute >= ?)`).get(first(now - 60_000), first(now - 3_600_000)),
  'edge minute': () => db.prepare(`SELECT count(*) FROM taskyard_tasks INDEXED BY taskyard_tasks_finished WHERE finished_at IS NOT NULL AND finished_at >= ? AND finished_at < ?`).get(now - 60_000, first(now - 60_000) * 60_000),
  waiting: () => db.prepare(`SELECT queue, state, run_at <= ? AS due, count(*) FROM taskyard_tasks INDEXED BY taskyard_tasks_waiting WHERE state IN ('PENDING', 'RETRY') GROUP BY 1, 2, 3`).all(now),
};
for (const [label, run] of Object.entries(parts)) {
  const out: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t = performance.now();
    run();
    out.push(performance.now() - t);
  }
  out.sort((a, b) => a - b);
  console.log(`${label.padEnd(13)} p50 ${out[50]!.toFixed(2)} ms  p99 ${out[98]!.toFixed(2)} ms`);
}
