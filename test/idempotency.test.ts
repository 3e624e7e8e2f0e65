/**
 * Idempotency keys (with a window), uniqueness while a run is live, and result caching, on a real
 * server and real ledgers (SQLite files, PostgreSQL), including concurrent duplicate launches
 * from one process, from two yards on one ledger and from two server processes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { TaskStore } from '../src/store/types.js';
import type { Taskyard } from '../src/taskyard.js';
import { eventually, http, startServer, startYard, tempDir } from './helpers.js';
import { freshPostgresDatabase } from './postgres-db.js';
import { newDataDir, removeDataDirs, startDemoServer, stopChildren } from './processes.js';

/** Runs of `ctl.sync` wait here until the test lets them finish (or they are cancelled). */
const held = new Map<string, () => void>();
const sync = defineTask({
  name: 'ctl.sync',
  unique: { by: ['company_id'] },
  params: z.object({ company_id: z.string(), months: z.number().int().default(1) }),
  async run(p, ctx) {
    await new Promise<void>((resolve) => {
      held.set(ctx.taskId, resolve);
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    held.delete(ctx.taskId);
    return { company: p.company_id };
  },
});

let reportRuns = 0;
const report = defineTask({
  name: 'ctl.report',
  cache: { ttl: '600ms', by: ['company_id', 'month'] },
  params: z.object({ company_id: z.string(), month: z.string(), format: z.string().default('pdf') }),
  run: (p) => ({ month: p.month, run: ++reportRuns }),
});

const keyed = defineTask({
  name: 'ctl.keyed',
  idempotency: { window: '400ms' },
  params: z.object({ company_id: z.string() }),
  run: () => 'ok',
});

const plain = defineTask({ name: 'ctl.plain', params: z.object({ company_id: z.string() }), run: () => 'plain' });

const tasks = [sync, report, keyed, plain];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let keyCounter = 0;
const freshKey = () => `key-${++keyCounter}-${Date.now()}`;

/** Lets a held `ctl.sync` run finish and waits for its SUCCESS. */
async function finish(yard: Taskyard, id: string) {
  const release = await eventually(() => held.get(id));
  release();
  return yard.waitFor(id, 5000);
}

describe('over HTTP', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer({ tasks, plugins: (yard) => [(app) => celeryRoutes(app, yard)] });
  });
  afterAll(() => server.close());
  const launch = (body: unknown) => http(`${server.url}/api/tasks`, { body });
  const celery = (body: unknown) => http(`${server.url}/api/celery/tasks/launch`, { body });

  it('a repeated idempotency key answers 200 with the same task, on the native and the Celery route', async () => {
    const key = freshKey();
    const first = await launch({ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: key });
    expect(first.status).toBe(202);
    expect(first.body.deduplicated).toBeUndefined();
    const again = await launch({ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: key });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ task_id: first.body.task_id, deduplicated: true, launch_outcome: 'idempotent' });

    // The Celery route takes the same key (same tenant) and keeps its documented shape.
    const viaCelery = await celery({ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: key });
    expect(viaCelery.status).toBe(200);
    expect(viaCelery.body).toMatchObject({ task_id: first.body.task_id, task_type: 'ctl.plain', deduplicated: true });
    expect(viaCelery.body.message).toMatch(/not launched again/);
    const fresh = await celery({ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: freshKey() });
    expect(fresh.body).toEqual({ task_id: expect.any(String), task_type: 'ctl.plain', status: 'PENDING', message: 'Task ctl.plain launched successfully' });
    // Without a key, every Celery launch is a new run.
    expect((await celery({ task_type: 'ctl.plain', params: { company_id: '73' } })).body.deduplicated).toBeUndefined();
  });

  it('past the definition window a key launches a new run; the old run keeps its record', async () => {
    const key = freshKey();
    const first = await launch({ task_type: 'ctl.keyed', params: { company_id: '73' }, idempotency_key: key });
    expect(first.status).toBe(202);
    expect((await launch({ task_type: 'ctl.keyed', params: { company_id: '73' }, idempotency_key: key })).body.task_id).toBe(first.body.task_id);
    await sleep(450);
    const later = await launch({ task_type: 'ctl.keyed', params: { company_id: '73' }, idempotency_key: key });
    expect(later.status).toBe(202);
    expect(later.body.task_id).not.toBe(first.body.task_id);
    // Within the new window the key answers with the new run.
    const repeat = await launch({ task_type: 'ctl.keyed', params: { company_id: '73' }, idempotency_key: key });
    expect(repeat).toMatchObject({ status: 200, body: { task_id: later.body.task_id } });
    expect((await http(`${server.url}/api/tasks/${first.body.task_id}`)).status).toBe(200);
    // Without a window (the default) a key holds as long as its run is in the ledger.
    const lasting = freshKey();
    const a = await launch({ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: lasting });
    await sleep(450);
    expect((await launch({ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: lasting })).body.task_id).toBe(a.body.task_id);
  });

  it('20 concurrent launches with one key make exactly one task', async () => {
    const key = freshKey();
    const body = { task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: key };
    const answers = await Promise.all(Array.from({ length: 20 }, () => launch(body)));
    const ids = new Set(answers.map((a) => a.body.task_id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.status === 202)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(19);
    const listed = await server.yard.list({ names: ['ctl.plain'], limit: 500 });
    expect(listed.tasks.filter((t) => t.idempotencyKey === key)).toHaveLength(1);
  });

  it('a unique task has one live run per company: a launch meanwhile is that run, marked deduplicated', async () => {
    const first = await launch({ task_type: 'ctl.sync', params: { company_id: '73' } });
    expect(first.status).toBe(202);
    // Other params do not matter, only `by`: the live sync of company 73 answers.
    const again = await launch({ task_type: 'ctl.sync', params: { company_id: '73', months: 6 } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ task_id: first.body.task_id, deduplicated: true, launch_outcome: 'deduplicated' });
    const viaCelery = await celery({ task_type: 'ctl.sync', params: { company_id: '73' } });
    expect(viaCelery.body).toMatchObject({ task_id: first.body.task_id, deduplicated: true });
    // Another company is another key.
    const other = await launch({ task_type: 'ctl.sync', params: { company_id: '4' } });
    expect(other.status).toBe(202);
    expect(other.body.task_id).not.toBe(first.body.task_id);

    // Once the run ends, a new launch makes a new run.
    await finish(server.yard, first.body.task_id);
    const next = await launch({ task_type: 'ctl.sync', params: { company_id: '73' } });
    expect(next.status).toBe(202);
    expect(next.body.task_id).not.toBe(first.body.task_id);

    // Retrying an ended run while another of its key is live would make two: refused.
    await server.yard.cancel(other.body.task_id, { reason: 'test' });
    const blocker = await launch({ task_type: 'ctl.sync', params: { company_id: '4' } });
    expect(blocker.status).toBe(202);
    const retry = await http(`${server.url}/api/tasks/${other.body.task_id}/retry`, { method: 'POST' });
    expect(retry.status).toBe(409);
    expect(retry.body.detail).toMatch(new RegExp(`run ${blocker.body.task_id} with the same key is (PENDING|STARTED)`));
    await finish(server.yard, blocker.body.task_id);
    expect((await http(`${server.url}/api/tasks/${other.body.task_id}/retry`, { method: 'POST' })).status).toBe(202);
    await finish(server.yard, other.body.task_id);
    await finish(server.yard, next.body.task_id);
  });

  it('20 concurrent launches of a unique task make one run', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => launch({ task_type: 'ctl.sync', params: { company_id: '900', months: i + 1 } })));
    const ids = new Set(answers.map((a) => a.body.task_id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.status === 202)).toHaveLength(1);
    expect(answers.filter((a) => a.body.deduplicated === true)).toHaveLength(19);
    await finish(server.yard, [...ids][0]!);
  });

  it('a cached task answers the same params within the TTL with its SUCCESS run', async () => {
    const first = await launch({ task_type: 'ctl.report', params: { company_id: '73', month: '2025-01' } });
    expect(first.status).toBe(202);
    // While it has not succeeded yet there is nothing to reuse.
    const done = await server.yard.waitFor(first.body.task_id, 5000);
    expect(done.state).toBe('SUCCESS');
    const cached = await launch({ task_type: 'ctl.report', params: { company_id: '73', month: '2025-01', format: 'xlsx' } });
    expect(cached.status).toBe(200);
    expect(cached.body).toMatchObject({ task_id: first.body.task_id, cached: true, state: 'SUCCESS', result: done.result });
    const viaCelery = await celery({ task_type: 'ctl.report', params: { company_id: '73', month: '2025-01' } });
    expect(viaCelery.body).toMatchObject({ task_id: first.body.task_id, status: 'SUCCESS', cached: true });
    // Other `by` values, or another tenant, are other results.
    expect((await launch({ task_type: 'ctl.report', params: { company_id: '73', month: '2025-02' } })).status).toBe(202);
    expect((await launch({ task_type: 'ctl.report', params: { company_id: '4', month: '2025-01' } })).status).toBe(202);
    // Past the TTL the task runs again.
    await sleep(650);
    const expired = await launch({ task_type: 'ctl.report', params: { company_id: '73', month: '2025-01' } });
    expect(expired.status).toBe(202);
    expect(expired.body.task_id).not.toBe(first.body.task_id);
  });

  it('a batch is 202 when it made a run, 200 when every task was answered by an earlier one', async () => {
    const key = freshKey();
    const made = await http(`${server.url}/api/tasks/batch`, { body: { tasks: [{ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: key }] } });
    expect(made.status).toBe(202);
    const repeated = await http(`${server.url}/api/tasks/batch`, { body: { tasks: [{ task_type: 'ctl.plain', params: { company_id: '73' }, idempotency_key: key }] } });
    expect(repeated.status).toBe(200);
    expect(repeated.body.tasks[0]).toMatchObject({ task_id: made.body.tasks[0].task_id, deduplicated: true });
  });
});

describe('unique runs and keys across two yards sharing one ledger', () => {
  const closers: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function twoYards(store: () => TaskStore | undefined, dir: string) {
    const a = await startYard({ tasks, dir, store: store() });
    closers.push(a.close);
    const b = await startYard({ tasks, dir, store: store() });
    closers.push(b.close);
    return [a.yard, b.yard] as const;
  }

  async function race(yards: readonly [Taskyard, Taskyard]) {
    const launches = Array.from({ length: 20 }, (_, i) =>
      yards[i % 2]!.launchEach([{ name: 'ctl.sync', params: { company_id: '555', months: i + 1 } }]).then(([l]) => l!),
    );
    const results = await Promise.all(launches);
    const ids = new Set(results.map((r) => r.record.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
    const live = await yards[0].list({ names: ['ctl.sync'], states: ['PENDING', 'STARTED', 'RETRY'], limit: 100 });
    expect(live.tasks.map((t) => t.id)).toEqual([...ids]);

    const key = freshKey();
    const keyed = await Promise.all(Array.from({ length: 20 }, (_, i) => yards[i % 2]!.launchEach([{ name: 'ctl.plain', params: { company_id: '555' }, idempotencyKey: key }])));
    expect(new Set(keyed.map(([l]) => l!.record.id)).size).toBe(1);
    await yards[0].cancel([...ids][0]!, { reason: 'done' });
  }

  it('on one SQLite file', async () => {
    const temp = tempDir();
    closers.push(temp.cleanup);
    await race(await twoYards(() => undefined, temp.dir));
  });

  it('on one PostgreSQL database', async () => {
    const db = await freshPostgresDatabase();
    closers.push(db.drop);
    const temp = tempDir();
    closers.push(temp.cleanup);
    await race(await twoYards(() => new PostgresStore({ connectionString: db.url, poolSize: 4 }), temp.dir));
  });
});

describe('windows and caches on PostgreSQL', () => {
  it('a key past its window is given up and taken by the new run; a cached SUCCESS answers within its TTL', async () => {
    const db = await freshPostgresDatabase();
    const { yard, close } = await startYard({ tasks, store: new PostgresStore({ connectionString: db.url, poolSize: 4 }) });
    try {
      const key = freshKey();
      const [first] = await yard.launchEach([{ name: 'ctl.keyed', params: { company_id: '73' }, idempotencyKey: key }]);
      expect((await yard.launchEach([{ name: 'ctl.keyed', params: { company_id: '73' }, idempotencyKey: key }]))[0]).toMatchObject({ outcome: 'idempotent', record: { id: first!.record.id } });
      await sleep(450);
      const [later] = await yard.launchEach([{ name: 'ctl.keyed', params: { company_id: '73' }, idempotencyKey: key }]);
      expect(later!.outcome).toBe('created');
      expect((await yard.get(first!.record.id)).idempotencyKey).toBeNull();
      expect((await yard.get(later!.record.id)).idempotencyKey).toBe(key);

      const [made] = await yard.launchEach([{ name: 'ctl.report', params: { company_id: '73', month: '2025-03' } }]);
      await yard.waitFor(made!.record.id, 5000);
      const [hit] = await yard.launchEach([{ name: 'ctl.report', params: { company_id: '73', month: '2025-03' } }]);
      expect(hit).toMatchObject({ outcome: 'cached', record: { id: made!.record.id, state: 'SUCCESS' } });
    } finally {
      await close();
      await db.drop();
    }
  });
});

describe('two server processes on one ledger', () => {
  afterEach(stopChildren);
  afterAll(removeDataDirs);

  it('20 launches with one key, split between the processes, make one task', async () => {
    const dir = newDataDir();
    const [a, b] = await Promise.all([startDemoServer(dir), startDemoServer(dir)]);
    const body = { task_type: 'calculate_rating', params: { resource_id: 'r-1' }, idempotency_key: 'rating-r-1' };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => http(`${(i % 2 ? a : b)!.url}/api/tasks`, { body })));
    expect(answers.every((r) => r.status === 202 || r.status === 200)).toBe(true);
    expect(new Set(answers.map((r) => r.body.task_id)).size).toBe(1);
    expect(answers.filter((r) => r.status === 202)).toHaveLength(1);
    const listed = await http(`${a!.url}/api/tasks?name=calculate_rating`);
    expect(listed.body.count).toBe(1);
  }, 60_000);
});
