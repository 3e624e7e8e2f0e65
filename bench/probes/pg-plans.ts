/**
 * Query plans of the hot reads on a PostgreSQL ledger of PROBE_ROWS runs (default 1,000,000), made
 * with generate_series in a throwaway schema: `npx tsx bench/probes/pg-plans.ts`.
 */
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres.js';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const rows = Number(process.env.PROBE_ROWS ?? 1_000_000);
const schema = `ty_probe_${process.pid}`;
const store = new PostgresStore({ connectionString: url, schema, poolSize: 2 });
await store.migrate();
const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
await client.connect();
try {
  const now = Date.now();
  await client.query(`INSERT INTO taskyard_tasks (id, name, category, display_name, state, progress, tenant_id, params, attempt, max_attempts,
      priority, queue, route, engine, run_at, created_at, started_at, finished_at, updated_at)
    SELECT lpad(to_hex(${now - rows} + j), 12, '0') || '-7000-8000-' || lpad(to_hex(j), 12, '0'),
      (ARRAY['sii.sync_documents','sii.sync_f29','calculate_rating','accounting.x'])[j % 4 + 1],
      (ARRAY['sii','sii','calculate_rating','reconciliation'])[j % 4 + 1], 'x',
      (ARRAY['SUCCESS','SUCCESS','SUCCESS','SUCCESS','FAILURE','REVOKED'])[j % 6 + 1], 100, (j % 100)::text, '{}', 1, 3, 0,
      'default', 'light', 'local', ${now - rows} + j, ${now - rows} + j, ${now - rows} + j, ${now - rows} + j + 5, ${now - rows} + j + 5
    FROM generate_series(0, ${rows - 1}) AS j`);
  await client.query(`INSERT INTO taskyard_finished (minute, tenant_id, count)
    SELECT finished_at / 60000, tenant_id, count(*) FROM taskyard_tasks GROUP BY 1, 2`);
  await client.query('VACUUM ANALYZE taskyard_tasks');
  await client.query('VACUUM ANALYZE taskyard_finished');
  const time = async (label: string, fn: (i: number) => Promise<unknown>, samples = 200) => {
    const out: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      await fn(i);
      out.push(performance.now() - t);
    }
    out.sort((a, b) => a - b);
    console.log(`${label.padEnd(14)} p50 ${out[samples / 2]!.toFixed(2)} ms  p99 ${out[Math.floor(samples * 0.99)]!.toFixed(2)} ms`);
  };
  const plan = async (text: string, values: unknown[]) =>
    console.log(text.slice(0, 90), '\n ', (await client.query(`EXPLAIN ${text}`, values)).rows.map((r) => r['QUERY PLAN']).join('\n  '));
  await plan(`SELECT * FROM taskyard_tasks WHERE tenant_id = $1 AND category IN ($2) AND state IN ($3) ORDER BY id DESC LIMIT 51`, ['7', 'sii', 'FAILURE']);
  await plan(`SELECT finished_at - started_at AS d FROM taskyard_tasks WHERE finished_at IS NOT NULL AND finished_at >= $1 AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT 5000`, [now - 3_600_000]);
  const ids = (await client.query(`SELECT id FROM taskyard_tasks WHERE random() < 0.001 LIMIT 300`)).rows.map((r) => r.id as string);
  await time('get', (i) => store.get(ids[i % ids.length]!, '*'));
  await time('filtered list', (i) => store.list({ tenantId: String(i % 100), states: ['FAILURE'], categories: ['sii'], limit: 50 }, '*'));
  await time('stats', () => store.stats('*', Date.now()), 100);
} finally {
  await client.query(`DROP SCHEMA ${schema} CASCADE`);
  await client.end();
  await store.close();
}
