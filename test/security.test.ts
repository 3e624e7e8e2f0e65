import { mkdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ReconciliationStore } from '../demo/reconciliation/store.js';
import { TaskyardClient } from '../src/cli/client.js';
import { defineTask } from '../src/core/definition.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import type { ApiKey } from '../src/http/auth.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import { sqliteMigrations } from '../src/store/migrations/sqlite.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { createWebhookTask, installWebhooks, WEBHOOK_TASK_NAME } from '../src/webhooks/index.js';
import { eventually, http, startServer, tempDir } from './helpers.js';

const KEYS = {
  tenant73: 'tenant-73-operator-key-0001',
  tenant4: 'tenant-4-operator-key-00001',
  admin73: 'tenant-73-admin-key-0000001',
  admin: 'all-tenants-admin-key-000001',
  operator: 'all-tenants-operator-key-01',
};
const API_KEYS: ApiKey[] = [
  { key: KEYS.tenant73, role: 'operator', tenants: ['73'] },
  { key: KEYS.tenant4, role: 'operator', tenants: ['4'] },
  { key: KEYS.admin73, role: 'admin', tenants: ['73'] },
  { key: KEYS.admin, role: 'admin', tenants: '*' },
  { key: KEYS.operator, role: 'operator', tenants: '*' },
];
const WEBHOOK_SECRET = 'whsec_security_0123456789';

/** Runs held open until released, so a worker has them active. */
const gates = new Map<string, () => void>();
const release = () => {
  for (const open of gates.values()) open();
  gates.clear();
};

const companyParams = z.object({ company_id: z.string(), months: z.number().int().min(1).max(12).default(1) });
const tasks = [
  defineTask({
    name: 'sii.sync_documents',
    params: companyParams,
    retry: false,
    run: (p) => ({ synced_for: p.company_id, documents: 10 * p.months }),
  }),
  defineTask({ name: 'sii.sync_f29', params: companyParams, retry: false, run: () => ({ forms: 1 }) }),
  defineTask({
    name: 'ops.tag',
    params: z.object({ company_id: z.string(), labels: z.record(z.string(), z.number()) }),
    retry: false,
    run: () => null,
  }),
  defineTask({
    name: 'ops.rebuild_index',
    tenant: () => null,
    params: z.object({ full: z.boolean().default(false) }),
    retry: false,
    run: () => 'rebuilt',
  }),
  defineTask({
    name: 'ops.hold',
    params: z.object({ company_id: z.string() }),
    retry: false,
    run: (_p, ctx) => new Promise<void>((resolve) => gates.set(ctx.taskId, resolve)),
  }),
  createWebhookTask({ retry: { delay: 20, maxDelay: 100, jitter: 0 } }),
];

let server: Awaited<ReturnType<typeof startServer>>;
let hook: { url: string; bodies: string[]; close(): Promise<void> };
beforeAll(async () => {
  const bodies: string[] = [];
  const receiver: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  hook = {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    bodies,
    close: () => new Promise<void>((resolve) => receiver.close(() => resolve())),
  };
  server = await startServer({ tasks, apiKeys: API_KEYS, plugins: (yard) => [(app) => celeryRoutes(app, yard)] });
});
afterAll(async () => {
  release();
  await server.close();
  await hook.close();
});
afterEach(release);

const api = (key: string, path: string, body?: unknown) =>
  http(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` }, body });
const launch = (key: string, body: unknown) => api(key, '/api/tasks', body);
let keyCounter = 0;
const freshKey = (label: string) => `${label}-${++keyCounter}-${Date.now()}`;

describe('idempotency keys belong to a tenant', () => {
  it("a key used by tenant 73 neither hands its run to tenant 4 nor stops 4 from using it", async () => {
    const key = freshKey('sync-73-2024');
    const first = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 3 }, idempotency_key: key });
    expect(first.status).toBe(202);
    await server.yard.waitFor(first.body.task_id, 5000);

    const other = await launch(KEYS.tenant4, { task_type: 'sii.sync_documents', params: { company_id: '4' }, idempotency_key: key });
    expect(other.status).toBe(202);
    expect(other.body.task_id).not.toBe(first.body.task_id);
    expect(other.body).toMatchObject({ tenant_id: '4', params: { company_id: '4', months: 1 }, result: null });
    expect(JSON.stringify(other.body)).not.toContain('"73"');

    // Each tenant's repeat answers with its own run.
    const again73 = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 3 }, idempotency_key: key });
    expect(again73.body.task_id).toBe(first.body.task_id);
    expect(again73.body.result).toEqual({ synced_for: '73', documents: 30 });
    const again4 = await launch(KEYS.tenant4, { task_type: 'sii.sync_documents', params: { company_id: '4' }, idempotency_key: key });
    expect(again4.body.task_id).toBe(other.body.task_id);
  });

  it("in the other order, a key squatted by tenant 4 does not answer tenant 73's launch with 4's run", async () => {
    const key = freshKey('sync-73-2024');
    const squat = await launch(KEYS.tenant4, { task_type: 'sii.sync_documents', params: { company_id: '4' }, idempotency_key: key });
    expect(squat.status).toBe(202);
    const own = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73' }, idempotency_key: key });
    expect(own.status).toBe(202);
    expect(own.body.task_id).not.toBe(squat.body.task_id);
    expect(own.body.tenant_id).toBe('73');
    const done = await server.yard.waitFor(own.body.task_id, 5000);
    expect(done.result).toEqual({ synced_for: '73', documents: 10 });
  });

  it('the same key with other params or another task type is a 409 that says so; the same launch is answered', async () => {
    const key = freshKey('k');
    const first = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 2 }, idempotency_key: key });
    expect(first.status).toBe(202);

    const otherParams = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 3 }, idempotency_key: key });
    expect(otherParams.status).toBe(409);
    expect(otherParams.body.detail).toMatch(new RegExp(`Idempotency key "${key}" was already used with different params`));

    const otherType = await launch(KEYS.tenant73, { task_type: 'sii.sync_f29', params: { company_id: '73', months: 2 }, idempotency_key: key });
    expect(otherType.status).toBe(409);
    expect(otherType.body.detail).toMatch(/already used for task type sii\.sync_documents, not sii\.sync_f29/);

    // Key order and defaults do not make a launch different: params are compared as validated.
    const reordered = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { months: 2, company_id: '73' }, idempotency_key: key });
    // A repeat is answered with the first run: 200, not a new 202.
    expect(reordered.status).toBe(200);
    expect(reordered.body).toMatchObject({ task_id: first.body.task_id, deduplicated: true, launch_outcome: 'idempotent' });
    const defaulted = freshKey('d');
    const a = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73' }, idempotency_key: defaulted });
    const b = await launch(KEYS.tenant73, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 1 }, idempotency_key: defaulted });
    expect(b.body.task_id).toBe(a.body.task_id);
    // Free-form objects keep the caller's key order; that order does not count either.
    const tagKey = freshKey('t');
    const tag = (labels: Record<string, number>) => launch(KEYS.tenant73, { task_type: 'ops.tag', params: { company_id: '73', labels }, idempotency_key: tagKey });
    const tagged = await tag({ a: 1, b: 2 });
    expect((await tag({ b: 2, a: 1 })).body.task_id).toBe(tagged.body.task_id);
    expect((await tag({ a: 1, b: 3 })).status).toBe(409);

    // In one batch as well, and nothing of a refused batch is written.
    const before = (await server.yard.list({ limit: 500 })).tasks.length;
    const batchKey = freshKey('b');
    const refused = await api(KEYS.tenant73, '/api/tasks/batch', {
      tasks: [
        { task_type: 'sii.sync_documents', params: { company_id: '73', months: 1 }, idempotency_key: batchKey },
        { task_type: 'sii.sync_documents', params: { company_id: '73', months: 2 }, idempotency_key: batchKey },
      ],
    });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/different params/);
    expect((await server.yard.list({ limit: 500 })).tasks.length).toBe(before);
    const same = await api(KEYS.tenant73, '/api/tasks/batch', {
      tasks: [
        { task_type: 'sii.sync_documents', params: { company_id: '73' }, idempotency_key: batchKey },
        { task_type: 'sii.sync_documents', params: { company_id: '73', months: 1 }, idempotency_key: batchKey },
      ],
    });
    expect(same.status).toBe(202);
    expect(same.body.tasks[0].task_id).toBe(same.body.tasks[1].task_id);
  });

  it("a webhook delivery's key fetches neither its record nor its URL and grant", async () => {
    const uninstall = installWebhooks(server.yard, { url: hook.url, secret: WEBHOOK_SECRET });
    try {
      const id = await server.yard.submit('sii.sync_documents', { company_id: '73' });
      await server.yard.waitFor(id, 5000);
      const delivery = (await eventually(async () => {
        const page = await server.yard.list({ names: [WEBHOOK_TASK_NAME], limit: 500 });
        return page.tasks.find((t) => (t.params as { payload: { task_id: string } }).payload.task_id === id);
      }))!;
      expect(delivery.idempotencyKey).toBeTruthy();

      const byTenant = await launch(KEYS.tenant4, { task_type: 'sii.sync_documents', params: { company_id: '4' }, idempotency_key: delivery.idempotencyKey });
      expect(byTenant.status).toBe(202);
      expect(byTenant.body.task_id).not.toBe(delivery.id);
      expect(byTenant.body.name).toBe('sii.sync_documents');
      // Even a key for every tenant, launching a tenant-less task under that key, gets no record.
      const byAll = await launch(KEYS.operator, { task_type: 'ops.rebuild_index', params: {}, idempotency_key: delivery.idempotencyKey });
      expect(byAll.status).toBe(409);
      expect(byTenant.body.params).toEqual({ company_id: '4', months: 1 });
      for (const res of [byTenant, byAll]) {
        const text = JSON.stringify(res.body);
        expect(text).not.toContain('grant');
        expect(text).not.toContain('payload');
        expect(text).not.toContain(delivery.id);
      }
    } finally {
      uninstall();
    }
  });

  it('the ledger keeps one run per tenant and key, tenant-less runs sharing one slot', async () => {
    const store = server.yard.store;
    const key = freshKey('raw');
    const record = (tenantId: string | null): TaskRecord => {
      const now = Date.now();
      return {
        id: uuidv7(now),
        name: 'ops.rebuild_index',
        category: 'ops',
        displayName: 'ops.rebuild_index',
        state: 'REVOKED',
        progress: 0,
        progressMessage: null,
        tenantId,
        params: {},
        result: null,
        error: null,
        traceback: null,
        meta: null,
        attempt: 0,
        maxAttempts: 1,
        priority: 0,
        queue: 'default',
        route: 'light',
        engine: 'local',
        worker: null,
        idempotencyKey: key,
        runAt: now,
        cancelRequested: null,
        revokeReason: 'test row',
        createdAt: now,
        startedAt: null,
        finishedAt: now,
        updatedAt: now,
      };
    };
    const written = async (r: TaskRecord) => (await store.insert([r])).length;
    expect(await written(record('73'))).toBe(1);
    expect(await written(record('4'))).toBe(1);
    expect(await written(record('73'))).toBe(0);
    expect(await written(record(null))).toBe(1);
    expect(await written(record(null))).toBe(0);
    expect((await store.findByIdempotencyKey('4', key))!.tenantId).toBe('4');
    expect((await store.findByIdempotencyKey(null, key))!.tenantId).toBeNull();
    expect(await store.findByIdempotencyKey('5', key)).toBeNull();
  });
});

describe('migration 0003 on PostgreSQL', () => {
  it('replaces the global key index with a per-tenant one that PostgreSQL accepts', async () => {
    const schema = `taskyard_sec_${process.pid}_${Date.now()}`;
    const connection = { host: '127.0.0.1', port: 5432, user: process.env.PGUSER ?? 'postgres', database: 'test' };
    const admin = new pg.Client(connection);
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const db = new Kysely<any>({ // eslint-disable-line @typescript-eslint/no-explicit-any
      dialect: new PostgresDialect({ pool: new pg.Pool({ ...connection, max: 1, options: `-c search_path=${schema}` }) }),
    });
    try {
      // The columns and index that 0001 makes, then the migration itself.
      await db.schema.createTable('taskyard_tasks').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('tenant_id', 'text').addColumn('idempotency_key', 'text').execute();
      await db.schema.createIndex('taskyard_tasks_idempotency').on('taskyard_tasks').column('idempotency_key').unique().where(sql.ref('idempotency_key'), 'is not', null).execute();
      await sqliteMigrations['0003_tenant_idempotency']!.up(db);

      const insert = async (id: string, tenant: string | null, key: string | null) =>
        Number((await sql`INSERT INTO taskyard_tasks (id, tenant_id, idempotency_key) VALUES (${id}, ${tenant}, ${key}) ON CONFLICT DO NOTHING`.execute(db)).numAffectedRows);
      expect(await insert('a', '73', 'k')).toBe(1);
      expect(await insert('b', '4', 'k')).toBe(1);
      expect(await insert('c', '73', 'k')).toBe(0);
      expect(await insert('d', null, 'k')).toBe(1);
      expect(await insert('e', null, 'k')).toBe(0);
      expect(await insert('f', null, null)).toBe(1);
      expect(await insert('g', null, null)).toBe(1);
      const indexes = await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE schemaname = ${schema}`.execute(db);
      expect(indexes.rows.map((r) => r.indexname).sort()).toEqual(['taskyard_tasks_pkey', 'taskyard_tasks_tenant_idempotency']);
    } finally {
      await db.destroy();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    }
  });
});

describe('internal definitions', () => {
  it('are neither listed nor launchable through any API, while the library still submits them', async () => {
    const listings = await Promise.all([
      api(KEYS.admin, '/api/celery/tasks'),
      api(KEYS.admin, '/api/tasks/types/'),
      api(KEYS.admin, '/api/celery/stats'),
      http(`${server.url}/openapi.json`),
    ]);
    for (const res of listings) {
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain(WEBHOOK_TASK_NAME);
    }
    expect(listings[0].body.map((t: { task_type: string }) => t.task_type)).toContain('sii.sync_documents');
    expect(listings[2].body.registered_tasks).toContain('sii.sync_documents');
    // The command line lists types through the API.
    const types = await new TaskyardClient(server.url, KEYS.admin).types();
    expect(JSON.stringify(types)).not.toContain(WEBHOOK_TASK_NAME);
    expect(JSON.stringify(types)).toContain('sii.sync_documents');

    // A delivery relaunched with copied params is an unknown task type, like any unknown name.
    const uninstall = installWebhooks(server.yard, { url: hook.url, secret: WEBHOOK_SECRET });
    try {
      const id = await server.yard.submit('sii.sync_f29', { company_id: '73' });
      const delivery = (await eventually(async () => {
        const page = await server.yard.list({ names: [WEBHOOK_TASK_NAME], states: ['SUCCESS'], limit: 500 });
        return page.tasks.find((t) => (t.params as { payload: { task_id: string } }).payload.task_id === id);
      }))!;
      const sent = hook.bodies.length;
      const params = delivery.params;
      const unknown = await launch(KEYS.admin, { task_type: 'nope.nothing', params: {} });
      expect(unknown.status).toBe(400);
      const attempts = [
        await launch(KEYS.admin, { task_type: WEBHOOK_TASK_NAME, params }),
        await launch(KEYS.operator, { name: WEBHOOK_TASK_NAME, params }),
        await api(KEYS.admin, '/api/celery/tasks/launch', { task_type: WEBHOOK_TASK_NAME, params }),
        await api(KEYS.admin, '/api/tasks/batch', { tasks: [{ task_type: 'sii.sync_f29', params: { company_id: '73' } }, { task_type: WEBHOOK_TASK_NAME, params }] }),
      ];
      for (const res of attempts) {
        expect(res.status).toBe(400);
        expect(res.body.detail).toBe(`Unknown task type: ${WEBHOOK_TASK_NAME}`);
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(hook.bodies).toHaveLength(sent);
      const deliveries = await server.yard.list({ names: [WEBHOOK_TASK_NAME], limit: 500 });
      expect(deliveries.tasks.filter((t) => (t.params as { payload: { task_id: string } }).payload.task_id === id)).toHaveLength(1);
    } finally {
      uninstall();
    }
    // The library (as installWebhooks does) can.
    const own = await server.yard.submit(WEBHOOK_TASK_NAME, { url: hook.url, event: 'succeeded', payload: {} });
    expect((await server.yard.get(own)).name).toBe(WEBHOOK_TASK_NAME);
  });
});

describe('worker information for a tenant-limited key', () => {
  it("counts only that tenant's runs, active and finished", async () => {
    const worker = (await server.yard.stats()).workers[0]!;
    const processedBefore = { all: worker.processed, t73: worker.processedByTenant['73'] ?? 0 };
    const finished = await server.yard.submitMany([
      { name: 'sii.sync_f29', params: { company_id: '73' } },
      { name: 'sii.sync_f29', params: { company_id: '4' } },
      { name: 'sii.sync_f29', params: { company_id: '4' } },
    ]);
    await Promise.all(finished.map((id) => server.yard.waitFor(id, 5000)));
    const [held73, held4] = await server.yard.submitMany([
      { name: 'ops.hold', params: { company_id: '73' } },
      { name: 'ops.hold', params: { company_id: '4' } },
    ]);
    await eventually(() => gates.has(held73!) && gates.has(held4!));
    // Finished runs are counted once their outcome is recorded.
    await eventually(async () => (await server.yard.stats()).workers[0]!.processed >= processedBefore.all + 3);

    const celery = await api(KEYS.admin73, '/api/celery/stats');
    expect(celery.status).toBe(200);
    const [name] = Object.keys(celery.body.worker_stats);
    expect(celery.body.active_tasks[name!].map((t: { id: string }) => t.id)).toEqual([held73]);
    expect(celery.body.worker_stats[name!].total).toBe(processedBefore.t73 + 1);

    const native = await api(KEYS.admin73, '/api/tasks/statistics/');
    expect(native.status).toBe(200);
    expect(native.body.workers).toHaveLength(1);
    expect(native.body.workers[0]).toMatchObject({ active: 1, processed: processedBefore.t73 + 1 });

    // A key for every tenant sees both.
    const all = await api(KEYS.admin, '/api/celery/stats');
    expect(all.body.active_tasks[name!].map((t: { id: string }) => t.id).sort()).toEqual([held73, held4].sort());
    expect(all.body.worker_stats[name!].total).toBeGreaterThanOrEqual(processedBefore.all + 3);
    const library = (await server.yard.stats(['4'])).workers[0]!;
    expect(library.active.map((r) => r.id)).toEqual([held4]);
    expect(Object.keys(library.processedByTenant)).toEqual(['4']);
  });
});

describe('ledger files are the owner’s alone', () => {
  const mode = (path: string) => statSync(path).mode & 0o777;

  it('creates the SQLite ledger, its WAL and shared memory 0600 in a 0700 directory', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const ledgerDir = join(dir, 'data', 'ledger');
      const file = join(ledgerDir, 'taskyard.db');
      const store = new SqliteStore({ filename: file });
      await store.migrate();
      expect(mode(ledgerDir)).toBe(0o700);
      for (const path of [file, `${file}-wal`, `${file}-shm`]) expect(mode(path), path).toBe(0o600);
      await store.close();

      // A directory that already exists keeps the modes its owner chose.
      const shared = join(dir, 'shared');
      mkdirSync(shared, { mode: 0o755 });
      const other = new SqliteStore({ filename: join(shared, 'taskyard.db') });
      await other.migrate();
      expect(mode(shared)).toBe(0o755);
      expect(mode(join(shared, 'taskyard.db'))).toBe(0o600);
      await other.close();
    } finally {
      cleanup();
    }
  });

  it("creates the reconciliation module's database the same way", () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'recon', 'reconciliation.db');
      const store = new ReconciliationStore(file);
      store.create({ tenantId: '73', mode: 'compare_two_engines', config: {} });
      expect(mode(join(dir, 'recon'))).toBe(0o700);
      for (const path of [file, `${file}-wal`, `${file}-shm`]) expect(mode(path), path).toBe(0o600);
      store.close();
    } finally {
      cleanup();
    }
  });
});
