/**
 * The rolling counts behind throughput (runs finished per minute and tenant) against the ledger's
 * own rows, on SQLite and PostgreSQL, with two stores writing the same ledger: launches,
 * outcomes, retries, cancels, refused duplicates and pruning all keep them exact.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { firstIdAt, uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskChange, TaskStore } from '../src/store/types.js';
import { TEST_DATABASE_URL, dropSchema, freshSchema, tempDir } from './helpers.js';

type Rows = Array<Record<string, unknown>>;

/** Two stores on one fresh ledger, and a raw query on it. */
interface Ledger {
  a: TaskStore;
  b: TaskStore;
  query(text: string): Promise<Rows>;
  dispose(): Promise<void>;
}

const ledgers: Array<[string, () => Promise<Ledger>]> = [
  [
    'sqlite',
    async () => {
      const temp = tempDir();
      const open = async () => {
        const store = new SqliteStore({ filename: join(temp.dir, 'ledger.db') });
        await store.migrate();
        return store;
      };
      const a = await open();
      const b = await open();
      return {
        a,
        b,
        query: async (text) => a.db.prepare(text).all() as Rows,
        async dispose() {
          await a.close();
          await b.close();
          await temp.cleanup();
        },
      };
    },
  ],
  [
    'postgres',
    async () => {
      const schema = freshSchema();
      const open = async () => {
        const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2 });
        await store.migrate();
        return store;
      };
      const a = await open();
      const b = await open();
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${schema}` });
      await client.connect();
      return {
        a,
        b,
        query: async (text) => (await client.query(text)).rows,
        async dispose() {
          await client.end();
          await a.close();
          await b.close();
          await dropSchema(schema);
        },
      };
    },
  ],
];

const MINUTE = 60_000;

function record(overrides: Partial<TaskRecord>): TaskRecord {
  const now = Date.now() - 1000;
  return {
    id: uuidv7(), name: 'demo.job', category: 'demo', displayName: 'Demo job', state: 'PENDING', progress: 0,
    progressMessage: null, tenantId: '73', params: {}, result: null, error: null, traceback: null, meta: null, attempt: 0,
    maxAttempts: 3, priority: 0, queue: 'default', route: 'light', engine: 'local', worker: null, idempotencyKey: null,
    runAt: now, cancelRequested: null, revokeReason: null, createdAt: now, startedAt: null, finishedAt: null, updatedAt: now,
    ...overrides,
  };
}

/** An id of a run created at `at` (uuidv7 itself never goes back in time). */
const idAt = (at: number): string => `${firstIdAt(at)}-7000-8${randomBytes(7).toString('hex').slice(1)}`;

/** An already finished run, as an import or a test fixture would insert it. */
const finishedAt = (at: number, tenantId: string | null = '4', id = idAt(at - 1000)): TaskRecord =>
  record({ id, tenantId, state: 'SUCCESS', attempt: 1, createdAt: at - 1000, runAt: at - 1000, startedAt: at - 500, finishedAt: at, updatedAt: at });

const outcome = (id: string, to: 'SUCCESS' | 'FAILURE', at = Date.now()): TaskChange => ({
  id, to, from: ['STARTED'], patch: { finishedAt: at, ...(to === 'FAILURE' ? { error: 'boom' } : { result: 'ok' }) },
  event: to === 'SUCCESS' ? 'succeeded' : 'failed',
});

/** Sorted "minute/tenant=count" lines: the rolling counts, and the same computed from the runs. */
async function counts(ledger: Ledger): Promise<{ rolling: string[]; ledger: string[] }> {
  const line = (r: Record<string, unknown>) => `${Number(r.minute)}/${String(r.tenant_id)}=${Number(r.count)}`;
  const rolling = await ledger.query('SELECT minute, tenant_id, count FROM taskyard_finished WHERE count <> 0');
  const own = await ledger.query(`SELECT finished_at / ${MINUTE} AS minute, coalesce(tenant_id, '') AS tenant_id, count(*) AS count
    FROM taskyard_tasks WHERE finished_at IS NOT NULL GROUP BY 1, 2`);
  return { rolling: rolling.map(line).sort(), ledger: own.map(line).sort() };
}

describe.each(ledgers)('rolling finished counts on %s', (_kind, make) => {
  let ledger: Ledger;

  afterEach(async () => {
    await ledger?.dispose();
  });

  it('stay equal to the ledger through outcomes, retries, cancels, duplicates and pruning, from two stores', async () => {
    ledger = await make();
    const { a, b } = ledger;
    const now = Date.now();
    // Finished runs inserted as they are: two hours ago, in the window's edge minute, within the minute.
    await a.insert([finishedAt(now - 2 * 60 * MINUTE), finishedAt(now - 2 * 60 * MINUTE, null), finishedAt(now - MINUTE - 5_000), finishedAt(now - 30_000, '73')]);
    const waiting = [record({}), record({}), record({ tenantId: null }), record({ tenantId: '4' }), record({})];
    await b.insert(waiting);

    // Store a claims three: one succeeds, one fails, one goes to RETRY (not finished).
    const claimed = await a.claim({ limit: 3, now: Date.now(), worker: 'a' });
    expect(claimed).toHaveLength(3);
    const [ok, bad, again] = claimed.map((r) => r.id) as [string, string, string];
    await a.apply([outcome(ok, 'SUCCESS'), outcome(bad, 'FAILURE')]);
    await a.apply([{ id: again, to: 'RETRY', from: ['STARTED'], patch: { error: 'later', runAt: Date.now() }, event: 'retry' }]);
    // A late duplicate outcome from the other store is refused and counts nothing.
    expect(await b.apply([outcome(ok, 'FAILURE')])).toEqual([null]);
    // Store b takes the retry and one more, and finishes both; the last waiting run is cancelled.
    const second = [...(await b.start([again], 'b', Date.now())), ...(await b.claim({ limit: 1, now: Date.now(), worker: 'b' }))];
    expect(second.map((r) => r.id)).toContain(again);
    expect(second).toHaveLength(2);
    await b.apply(second.map((r) => outcome(r.id, 'SUCCESS')));
    const left = waiting.map((r) => r.id).filter((id) => ![ok, bad, ...second.map((r) => r.id)].includes(id));
    expect(left).toHaveLength(1);
    await a.apply([{ id: left[0]!, to: 'REVOKED', from: ['PENDING'], patch: { finishedAt: Date.now(), revokeReason: 'stop' }, event: 'revoked' }]);

    let seen = await counts(ledger);
    expect(seen.rolling).toEqual(seen.ledger);
    expect(seen.ledger.reduce((sum, l) => sum + Number(l.split('=')[1]), 0)).toBe(9);

    // Pruning the runs of two hours ago takes them out of the counts too.
    expect(await b.prune({ state: 'SUCCESS', before: now - 60 * MINUTE }, 100)).toBe(2);
    seen = await counts(ledger);
    expect(seen.rolling).toEqual(seen.ledger);
    expect(seen.ledger.reduce((sum, l) => sum + Number(l.split('=')[1]), 0)).toBe(7);
  });

  it('throughput over the last minute and hour matches the runs finished since, exactly, per scope', async () => {
    ledger = await make();
    const now = Date.now();
    // Runs spread over the last 70 minutes, every 45 s, in two tenants: windows start mid-minute.
    const runs: TaskRecord[] = [];
    for (let t = now - 70 * MINUTE; t <= now; t += 45_000) runs.push(finishedAt(t, runs.length % 3 === 0 ? '73' : '4'));
    runs.push(finishedAt(now - MINUTE), finishedAt(now - 60 * MINUTE), finishedAt(now - MINUTE - 1), finishedAt(now - 60 * MINUTE - 1));
    await ledger.a.insert(runs);
    const scopes: Array<'*' | string[]> = ['*', ['4'], ['73', '5']];
    for (const scope of scopes) {
      const inScope = runs.filter((r) => scope === '*' || scope.includes(r.tenantId!));
      const since = (ms: number) => inScope.filter((r) => r.finishedAt! >= now - ms).length;
      const stats = await ledger.b.stats(scope, now);
      expect(stats.throughput.lastMinute, `last minute, scope ${scope}`).toBe(since(MINUTE));
      expect(stats.throughput.lastHour, `last hour, scope ${scope}`).toBe(since(60 * MINUTE));
    }
  });
});
