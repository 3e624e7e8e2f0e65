/** Query plans of the hot reads on a fresh SQLite ledger (run: npx tsx bench/probes/plans.ts). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'taskyard-plans-'));
const store = new SqliteStore({ filename: join(dir, 'ledger.db') });
await store.migrate();
store.db.exec('ANALYZE');
const plan = (text: string, ...values: unknown[]) =>
  console.log(text.replace(/\s+/g, ' ').slice(0, 120), '\n ', (store.db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...values) as Array<{ detail: string }>).map((r) => r.detail).join(' | '));
plan(`SELECT * FROM taskyard_tasks WHERE tenant_id = ? AND category IN (?) AND state IN (?) ORDER BY id DESC LIMIT 51`, '7', 'sii', 'FAILURE');
plan(`SELECT * FROM taskyard_tasks WHERE tenant_id = ? AND category IN (?, ?) AND state IN (?) ORDER BY id DESC LIMIT 51`, '7', 'sii', 'x', 'FAILURE');
plan(`SELECT * FROM taskyard_tasks WHERE tenant_id = ? ORDER BY id DESC LIMIT 51`, '7');
plan(`SELECT count(*) FROM taskyard_tasks INDEXED BY taskyard_tasks_finished WHERE finished_at IS NOT NULL AND finished_at >= ? AND finished_at < ? AND tenant_id IN (?)`, 1, 2, '7');
plan(`SELECT finished_at - started_at AS d FROM taskyard_tasks INDEXED BY taskyard_tasks_finished WHERE finished_at IS NOT NULL AND finished_at >= ? AND started_at IS NOT NULL AND 1 = 1 ORDER BY finished_at DESC LIMIT 5000`, 1);
plan(`SELECT finished_at - started_at AS d FROM taskyard_tasks INDEXED BY taskyard_tasks_tenant_finished WHERE finished_at IS NOT NULL AND finished_at >= ? AND started_at IS NOT NULL AND tenant_id IN (?, ?) ORDER BY finished_at DESC LIMIT 5000`, 1, '7', '8');
plan(`SELECT count(*) FROM taskyard_tasks INDEXED BY taskyard_tasks_tenant_finished WHERE finished_at IS NOT NULL AND finished_at >= ? AND finished_at < ? AND tenant_id IN (?)`, 1, 2, '7');
await store.close();
rmSync(dir, { recursive: true, force: true });
