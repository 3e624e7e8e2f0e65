/**
 * What only the PostgreSQL store has to prove: event seqs in commit order across processes,
 * claims that skip locked rows, group commit, LISTEN/NOTIFY, its pool, and a schema that ends
 * where the SQLite ledger's does. The shared contract is in store-conformance.test.ts.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../src/core/events.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import { loadConfig } from '../src/config.js';
import { createStore, describeDatabaseUrl } from '../src/store/index.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskChange } from '../src/store/types.js';
import { TEST_DATABASE_URL, dropSchema, eventually, freshSchema, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fresh schema, dropped after the test, and a way to open stores on it (each one a "process"). */
function ledger() {
  const schema = freshSchema();
  const stores: PostgresStore[] = [];
  cleanups.push(async () => {
    for (const store of stores) await store.close();
    await dropSchema(schema);
  });
  return {
    schema,
    async open(options: Partial<ConstructorParameters<typeof PostgresStore>[0]> = {}): Promise<PostgresStore> {
      const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 3, ...options });
      stores.push(store);
      await store.migrate();
      return store;
    },
  };
}

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await c.connect();
  cleanups.push(() => c.end());
  return c;
}

function record(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = Date.now() - 1000;
  return {
    id: uuidv7(), name: 'pg.job', category: 'pg', displayName: 'PG job', state: 'PENDING', progress: 0, progressMessage: null,
    tenantId: '73', params: {}, result: null, error: null, traceback: null, meta: null, attempt: 0, maxAttempts: 3, priority: 0,
    queue: 'default', route: 'light', engine: 'local', worker: null, idempotencyKey: null, runAt: now, cancelRequested: null,
    revokeReason: null, createdAt: now, startedAt: null, finishedAt: null, updatedAt: now, ...overrides,
  };
}

const succeed = (id: string): TaskChange => ({ id, to: 'SUCCESS', from: ['STARTED'], patch: { result: 'ok', finishedAt: Date.now() }, event: 'succeeded' });

describe('event order across processes', () => {
  it('a reader polling events(afterSeq) never sees a seq appear below one it already passed', async () => {
    const db = ledger();
    const writers = await Promise.all([db.open(), db.open(), db.open(), db.open()]);
    const reader = await db.open();
    const deadline = Date.now() + 2500;
    let writing = true;

    // Each writer store runs a few independent loops (insert, claim, finish), so transactions of
    // different stores overlap all the time.
    const write = async (store: PostgresStore, loop: number) => {
      while (Date.now() < deadline) {
        await store.insert(Array.from({ length: 1 + (loop % 3) }, () => record()));
        const claimed = await store.claim({ limit: 3, now: Date.now(), worker: `w${loop}` });
        await store.apply(claimed.map((r) => succeed(r.id)));
      }
    };
    const seen: number[] = [];
    const read = async () => {
      let cursor = 0;
      for (;;) {
        const done = !writing;
        const page = await reader.events({ afterSeq: cursor, limit: 500 }, '*');
        for (const event of page) {
          expect(event.seq).toBeGreaterThan(cursor);
          cursor = event.seq;
          seen.push(event.seq);
        }
        if (done && page.length < 500) return;
      }
    };
    const reading = read();
    await Promise.all(writers.flatMap((store) => [0, 1, 2].map((loop) => write(store, loop))));
    writing = false;
    await reading;

    const all: TaskEvent[] = [];
    for (let after = 0; ; ) {
      const page = await reader.events({ afterSeq: after, limit: 5000 }, '*');
      all.push(...page);
      if (page.length < 5000) break;
      after = page[page.length - 1]!.seq;
    }
    expect(all.length).toBeGreaterThan(200);
    // Every committed event was read: none was committed behind the reader's cursor.
    const missed = all.map((e) => e.seq).filter((seq) => !seen.includes(seq));
    expect(missed).toEqual([]);
    expect(seen).toHaveLength(all.length);
  });

  it('lastSeq waits for a transaction that has drawn seqs but not committed yet', async () => {
    const db = ledger();
    const writer = await db.open();
    const reader = await db.open();
    await writer.insert([record()]);
    const before = await reader.lastSeq();
    // Hold the count row the next insert updates: its final statement draws seqs, then waits here.
    const blocker = await client();
    await blocker.query('BEGIN');
    const { rowCount } = await blocker.query(`SELECT 1 FROM ${db.schema}.taskyard_counts WHERE tenant_id = '73' AND state = 'PENDING' FOR UPDATE`);
    expect(rowCount).toBe(1);
    const inserting = writer.insert([record()]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    let settled = false;
    const reading = reader.lastSeq().then((seq) => ((settled = true), seq));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(settled).toBe(false);
    await blocker.query('ROLLBACK');
    const [event] = await inserting;
    expect(await reading).toBe(event!.seq);
    expect(event!.seq).toBeGreaterThan(before);
  });
});

describe('claims', () => {
  it('skip runs another transaction holds instead of waiting for them', async () => {
    const db = ledger();
    const store = await db.open();
    const runs = [record({ priority: 9 }), record(), record()];
    await store.insert(runs);
    const holder = await client();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM ${db.schema}.taskyard_tasks WHERE id = $1 FOR UPDATE`, [runs[0]!.id]);
    const started = Date.now();
    const claimed = await store.claim({ limit: 10, now: Date.now(), worker: 'w' });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(claimed.map((r) => r.id).sort()).toEqual([runs[1]!.id, runs[2]!.id].sort());
    await holder.query('ROLLBACK');
    expect((await store.claim({ limit: 10, now: Date.now(), worker: 'w' })).map((r) => r.id)).toEqual([runs[0]!.id]);
  }, 10_000);
});

describe('group commit', () => {
  it('writes made in one event-loop turn share one transaction', async () => {
    const db = ledger();
    const commits: TaskEvent[][] = [];
    const store = await db.open({ onCommit: (events) => commits.push(events) });
    const records = Array.from({ length: 300 }, () => record());
    await Promise.all(records.map((r) => store.insert([r])));
    expect(commits).toHaveLength(1);
    expect(commits[0]).toHaveLength(300);

    commits.length = 0;
    const claimed = await store.claim({ limit: 300, now: Date.now(), worker: 'w' });
    expect(claimed).toHaveLength(300);
    await Promise.all([...claimed.map((r) => store.apply([succeed(r.id)])), store.insert([record()])]);
    expect(commits.map((c) => c.length)).toEqual([300, 301]);
  });
});

  it('writes each task row once per change: events are found by task through an index, not a pointer on the row', async () => {
    const db = ledger();
    const store = await db.open();
    const c = await client();
    const run = record();
    // A row's ctid moves with every new version of it: (0,1) is the first version on the first page.
    const version = async () => (await c.query(`SELECT ctid::text FROM ${db.schema}.taskyard_tasks WHERE id = $1`, [run.id])).rows[0].ctid;
    await store.insert([run]);
    expect(await version()).toBe('(0,1)');
    await store.claim({ limit: 1, now: Date.now(), worker: 'w' });
    await store.apply([succeed(run.id)]);
    expect(await version()).toBe('(0,3)');
    expect((await store.events({ afterSeq: 0, limit: 10, taskId: run.id }, '*')).map((e) => e.type)).toEqual(['enqueued', 'started', 'succeeded']);

    await c.query(`SET search_path = ${db.schema}; SET enable_seqscan = off`);
    const { rows: plan } = await c.query(`EXPLAIN SELECT * FROM taskyard_events WHERE task_id = $1 AND seq > 0 ORDER BY seq LIMIT 10`.replace('$1', `'${run.id}'`));
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/taskyard_events_task/);
  });

describe('a write PostgreSQL refuses', () => {
  it('fails alone: the transaction it shared is run again without it', async () => {
    const db = ledger();
    const commits: TaskEvent[][] = [];
    const store = await db.open({ onCommit: (events) => commits.push(events) });
    await store.insert([record(), record()]);
    const [a, b] = await store.claim({ limit: 2, now: Date.now(), worker: 'w' });
    commits.length = 0;
    // 2^40 passes every check in the store, but not the integer column: only the server refuses it.
    const results = await Promise.allSettled([
      store.apply([{ id: a!.id, to: 'STARTED', from: ['STARTED'], patch: { progress: 10 }, event: 'progress' }]),
      store.apply([{ id: b!.id, to: 'STARTED', from: ['STARTED'], patch: { progress: 2 ** 40 }, event: 'progress' }]),
      store.apply([succeed(b!.id)]),
      store.insert([record()]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: '22003' });
    expect(await store.get(a!.id, '*')).toMatchObject({ progress: 10 });
    expect(await store.get(b!.id, '*')).toMatchObject({ state: 'SUCCESS', progress: 0 });
    expect(commits.flat().map((e) => e.type)).toEqual(['progress', 'succeeded', 'enqueued']);
  });

  it('whole numbers: a fractional time or count is rounded, not refused', async () => {
    const db = ledger();
    const store = await db.open();
    const run = record({ runAt: Date.now() + 0.25, priority: 1.4 });
    await store.insert([run]);
    expect(await store.get(run.id, '*')).toMatchObject({ runAt: Math.round(run.runAt), priority: 1 });
    const [claimed] = await store.claim({ limit: 1, now: Date.now() + 10, worker: 'w' });
    await store.apply([{ id: claimed!.id, to: 'RETRY', from: ['STARTED'], patch: { runAt: Date.now() + 1000.6 }, event: 'retry' }]);
    expect(Number.isInteger((await store.get(run.id, '*'))!.runAt)).toBe(true);
  });
});

describe('notifications', () => {
  it("a listener is woken when another process commits events, not by its own, and not after it stops", async () => {
    const db = ledger();
    const writer = await db.open();
    const watcher = await db.open();
    let wakes = 0;
    const stop = await watcher.listen(() => wakes++);
    await eventually(() => wakes >= 1); // once on connecting
    const before = wakes;
    await writer.insert([record()]);
    await eventually(() => wakes > before);
    // Its own commits do not wake it: they reach onCommit directly.
    const settled = wakes;
    await watcher.insert([record()]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(wakes).toBe(settled);
    await stop();
    const after = wakes;
    await writer.insert([record()]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(wakes).toBe(after);
  });
});

describe('pool and values', () => {
  it('a write right after the server dropped every idle connection goes through on a fresh one', async () => {
    const db = ledger();
    const applicationName = `ty-drop-${uuidv7().slice(-8)}`;
    const store = await db.open({ poolSize: 3, applicationName });
    const admin = await client();
    for (let round = 0; round < 5; round++) {
      await Promise.all([store.list({ limit: 1 }, '*'), store.list({ limit: 1 }, '*'), store.list({ limit: 1 }, '*')]);
      const { rows } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      expect(rows.length).toBeGreaterThan(0);
      const [event] = await store.insert([record()]);
      expect(event).toMatchObject({ type: 'enqueued' });
    }
  });

  it('events and counts keep quotes, backslashes, braces, commas, "NULL" and unicode exactly as given', async () => {
    const db = ledger();
    const store = await db.open();
    const awkward = `it's "a" {b,c} \\ NULL \\" é 🚀`;
    const run = record({ name: awkward, category: `${awkward}/cat`, tenantId: `${awkward}/tenant` });
    await store.insert([run]);
    await store.claim({ limit: 1, now: Date.now(), worker: 'w' });
    await store.apply([{ ...succeed(run.id), data: { text: awkward, none: null } }]);
    const events = await store.events({ afterSeq: 0, limit: 10, taskId: run.id }, '*');
    expect(events.map((e) => [e.type, e.name, e.category, e.tenantId])).toEqual(
      ['enqueued', 'started', 'succeeded'].map((type) => [type, awkward, `${awkward}/cat`, `${awkward}/tenant`]),
    );
    expect(events[2]!.data).toEqual({ text: awkward, none: null });
    const stats = await store.stats([`${awkward}/tenant`], Date.now());
    expect(stats.byState.SUCCESS).toBe(1);
    expect(stats.byState.PENDING ?? 0).toBe(0);
  });

  it('never opens more connections than poolSize', async () => {
    const db = ledger();
    const applicationName = `ty-pool-${uuidv7().slice(-8)}`;
    const store = await db.open({ poolSize: 2, applicationName });
    await store.insert(Array.from({ length: 20 }, () => record()));
    const observer = await client();
    let most = 0;
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await (i % 2 ? store.list({ limit: 50 }, '*') : store.stats('*', Date.now()));
        const { rows } = await observer.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
        most = Math.max(most, rows[0].n);
      }),
    );
    expect(store.pool.totalCount).toBeLessThanOrEqual(2);
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBeGreaterThan(0);
  });

  it('keeps text PostgreSQL cannot hold (NUL) as U+FFFD instead of failing the write', async () => {
    const db = ledger();
    const store = await db.open();
    const run = record({ idempotencyKey: 'key\u0000x' });
    await store.insert([run]);
    const [claimed] = await store.claim({ limit: 1, now: Date.now(), worker: 'w' });
    await store.apply([{ id: claimed!.id, to: 'FAILURE', from: ['STARTED'], patch: { error: 'bad\u0000byte', finishedAt: Date.now() }, event: 'failed' }]);
    expect(await store.get(run.id, '*')).toMatchObject({ state: 'FAILURE', error: 'bad\uFFFDbyte' });
    expect((await store.findByIdempotencyKey('73', 'key\u0000x'))!.id).toBe(run.id);
  });
});

describe('schema', () => {
  it('ends where the SQLite ledger does: same tables, columns and indexes; seqs from an identity column', async () => {
    const db = ledger();
    await db.open();
    const temp = tempDir();
    cleanups.push(() => temp.cleanup());
    const sqlite = new SqliteStore({ filename: join(temp.dir, 'ledger.db') });
    cleanups.push(() => sqlite.close());
    await sqlite.migrate();

    const sqliteTables = sqlite.db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'taskyard%' AND name NOT LIKE 'taskyard_migration%' ORDER BY name`)
      .pluck()
      .all() as string[];
    const sqliteSchema = Object.fromEntries(
      sqliteTables.map((table) => [table, (sqlite.db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY name`).pluck().all(table) as string[])]),
    );
    const sqliteIndexes = sqlite.db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'taskyard%' AND sql IS NOT NULL ORDER BY name`)
      .pluck()
      .all();

    const c = await client();
    const { rows: columns } = await c.query(
      `SELECT table_name, column_name, is_identity, identity_generation FROM information_schema.columns
       WHERE table_schema = $1 AND table_name NOT LIKE 'taskyard_migration%' ORDER BY table_name, column_name`,
      [db.schema],
    );
    const pgSchema: Record<string, string[]> = {};
    for (const row of columns) (pgSchema[row.table_name] ??= []).push(row.column_name);
    expect(pgSchema).toEqual(sqliteSchema);
    expect(columns.find((r) => r.table_name === 'taskyard_events' && r.column_name === 'seq')).toMatchObject({ is_identity: 'YES', identity_generation: 'ALWAYS' });

    const { rows: indexes } = await c.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE 'taskyard_tasks%' AND indexname NOT LIKE '%_pkey'
       ORDER BY indexname`,
      [db.schema],
    );
    expect(indexes.map((r) => r.indexname)).toEqual(sqliteIndexes);
    expect(indexes.find((r) => r.indexname === 'taskyard_tasks_tenant_idempotency')!.indexdef).toMatch(
      /UNIQUE INDEX .*COALESCE\(tenant_id, ''::text\), idempotency_key\) WHERE \(idempotency_key IS NOT NULL\)/,
    );
  });

  it('migrating again, or from a second process at once, changes nothing', async () => {
    const db = ledger();
    const [a, b] = await Promise.all([db.open(), db.open()]);
    await a.insert([record()]);
    await a.migrate();
    await b.migrate();
    expect((await b.list({ limit: 10 }, '*')).tasks).toHaveLength(1);
  });
});

describe('selecting the store', () => {
  it('DATABASE_URL=postgres://... selects PostgreSQL, with TASKYARD_PG_POOL_SIZE connections', async () => {
    const url = 'postgres://app:secret@db.internal:5432/taskyard';
    const config = loadConfig({ DATABASE_URL: url, TASKYARD_PG_POOL_SIZE: '4' });
    expect(config).toMatchObject({ databaseUrl: url, pgPoolSize: 4 });
    expect(loadConfig({}).pgPoolSize).toBe(10);
    expect(() => loadConfig({ DATABASE_URL: url, TASKYARD_PG_POOL_SIZE: '0' })).toThrow(/TASKYARD_PG_POOL_SIZE/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://db/x' })).toThrow(/DATABASE_URL must look like/);

    const store = createStore(config.databaseUrl, { poolSize: config.pgPoolSize });
    cleanups.push(() => store.close());
    expect(store.kind).toBe('postgres');
    expect((store as PostgresStore).pool.options.max).toBe(4);
    expect(describeDatabaseUrl(url)).toBe('postgres://app:***@db.internal:5432/taskyard');

    const temp = tempDir();
    cleanups.push(() => temp.cleanup());
    const sqlite = createStore(loadConfig({ DATABASE_URL: `sqlite:${join(temp.dir, 'l.db')}` }).databaseUrl);
    cleanups.push(() => sqlite.close());
    expect(sqlite.kind).toBe('sqlite');
    expect(loadConfig({ TASKYARD_DATA_DIR: temp.dir }).databaseUrl).toBe(`sqlite:${join(temp.dir, 'taskyard.db')}`);
  });
});

describe('PostgreSQL migrations beside other schemas', () => {
  it('migrate while other schemas of the database are created and dropped', async () => {
    // Another application (or another test) churning schemas in the same database.
    const churn = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await churn.connect();
    let churning = true;
    const churner = (async () => {
      for (let i = 0; churning; i++) {
        const other = `ty_churn_${process.pid}_${i}`;
        await churn.query(`CREATE SCHEMA ${other}; CREATE TABLE ${other}.t (id serial primary key, a text, b text)`);
        await churn.query(`DROP SCHEMA ${other} CASCADE`);
      }
    })();
    const schemas = Array.from({ length: 12 }, () => freshSchema());
    try {
      for (const schema of schemas) {
        const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2 });
        try {
          await store.migrate();
          expect(await store.lastSeq()).toBe(0);
        } finally {
          await store.close();
        }
      }
    } finally {
      churning = false;
      await churner;
      await churn.end();
      for (const schema of schemas) await dropSchema(schema);
    }
  }, 60_000);
});
