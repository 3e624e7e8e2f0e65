/**
 * Schedules: tick computation on a fake clock; the scheduler on a real ledger (once per tick with
 * two schedulers racing, catch-up after a restart, no overlap); the HTTP API on a real server
 * (CRUD, validation, roles, tenant scope, OpenAPI); and three real server processes sharing one
 * ledger, SQLite and PostgreSQL, firing a 1-second schedule once per tick.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import type { ApiKey } from '../src/http/auth.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { ScheduleRow, TaskStore } from '../src/store/types.js';
import { Scheduler } from '../src/maintenance/scheduler.js';
import { CATCH_UP_LIMIT, planTicks } from '../src/schedules/catch-up.js';
import { nextTicks, parseTiming, ticksBetween } from '../src/schedules/timing.js';
import type { Taskyard } from '../src/taskyard.js';
import { ensureBuilt, ROOT } from './built.js';
import { dropSchema, eventually, freshSchema, http, silentLogger, startServer, startYard, tempDir, TEST_DATABASE_URL } from './helpers.js';
import { freshPostgresDatabase } from './postgres-db.js';
import { allTasks, newDataDir, removeDataDirs, startDemoServer, stopChildren, type Server } from './processes.js';

const MIN = 60_000;
const at = (text: string) => Date.parse(text);
const isoAll = (ticks: number[]) => ticks.map((t) => new Date(t).toISOString());

describe('tick computation (fake clock)', () => {
  it('aligns intervals to the epoch', () => {
    const timing = parseTiming({ every: '2m' });
    expect(isoAll(nextTicks(timing, at('2026-03-01T10:03:30Z'), 3))).toEqual([
      '2026-03-01T10:04:00.000Z',
      '2026-03-01T10:06:00.000Z',
      '2026-03-01T10:08:00.000Z',
    ]);
  });

  it('reads cron in its time zone, across daylight saving', () => {
    const timing = parseTiming({ cron: '0 9 * * *', timezone: 'America/Santiago' });
    // Santiago is UTC-3 in (southern) summer and UTC-4 in winter.
    expect(isoAll(nextTicks(timing, at('2026-01-10T00:00:00Z'), 1))).toEqual(['2026-01-10T12:00:00.000Z']);
    expect(isoAll(nextTicks(timing, at('2026-07-10T00:00:00Z'), 1))).toEqual(['2026-07-10T13:00:00.000Z']);
    expect(isoAll(nextTicks(parseTiming({ cron: '0 9 * * *' }), at('2026-07-10T00:00:00Z'), 1))).toEqual(['2026-07-10T09:00:00.000Z']);
  });

  it('refuses bad timings, naming the problem', () => {
    const problem = (input: Parameters<typeof parseTiming>[0]) => {
      try {
        parseTiming(input);
        return null;
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problem({ cron: '61 * * * *' })).toMatch(/cron .*not a valid cron expression.*minute/);
    expect(problem({ cron: '0 0 30 2 *' })).toMatch(/never fires/);
    expect(problem({ cron: '* * * * *', timezone: 'Mars/Olympus' })).toMatch(/timezone "Mars\/Olympus" is not a known IANA time zone/);
    expect(problem({ every: '2 weeks' })).toMatch(/every must be a duration/);
    expect(problem({ every: '10ms' })).toMatch(/between 1s and 366d/);
    expect(problem({ every: '1m', timezone: 'UTC' })).toMatch(/timezone applies to cron schedules only/);
    expect(problem({})).toMatch(/exactly one/);
    expect(problem({ cron: '* * * * *', every: '1m' })).toMatch(/exactly one/);
    expect(problem({ every: '1m' })).toBeNull();
  });

  it('catch-up: latest runs the newest missed tick once, none skips them, all runs them (capped)', () => {
    const timing = parseTiming({ every: '1m' });
    const last = at('2026-03-01T10:00:00Z');
    const now = last + 10 * MIN + 15_000; // 10 ticks, all over 10 s late
    expect(planTicks(timing, last, now, 'latest', 10_000)).toEqual({ fire: [last + 10 * MIN], skipped: 9, through: last + 10 * MIN });
    expect(planTicks(timing, last, now, 'none', 10_000)).toEqual({ fire: [], skipped: 10, through: last + 10 * MIN });
    const all = planTicks(timing, last, now, 'all', 10_000);
    expect(all.fire).toHaveLength(10);
    expect(all.skipped).toBe(0);
    // On time ticks always run; with latest, the missed ones before them are skipped.
    expect(planTicks(timing, last, last + 3 * MIN + 2000, 'latest', 10_000)).toEqual({ fire: [last + 3 * MIN], skipped: 2, through: last + 3 * MIN });
    expect(planTicks(timing, last, last + 3 * MIN + 2000, 'none', 10_000).fire).toEqual([last + 3 * MIN]);
    // Nothing due.
    expect(planTicks(timing, last, last + MIN - 1, 'latest', 10_000)).toEqual({ fire: [], skipped: 0, through: null });
    // A week down on a 1-second interval: counted, not walked, and `all` is capped.
    const week = planTicks(parseTiming({ every: '1s' }), last, last + 7 * 86_400_000, 'all', 10_000);
    expect(week.fire).toHaveLength(CATCH_UP_LIMIT);
    expect(week.skipped).toBe(7 * 86_400 - CATCH_UP_LIMIT);
  });

  it('keeps a long outage of a frequent cron cheap', () => {
    const started = Date.now();
    const { ticks, dropped } = ticksBetween(parseTiming({ cron: '* * * * * *' }), at('2026-03-01T00:00:00Z'), at('2026-03-02T00:00:00Z'), 100);
    expect(ticks).toHaveLength(100);
    expect(ticks.at(-1)).toBe(at('2026-03-02T00:00:00Z'));
    expect(Math.abs(dropped - (86_400 - 100))).toBeLessThan(100); // estimated past the walk
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

// ---- the store contract, on both stores --------------------------------------------------------

async function sqliteStore() {
  const temp = tempDir();
  const store = new SqliteStore({ filename: `${temp.dir}/ledger.db` });
  const dispose = async () => {
    await store.close();
    await temp.cleanup();
  };
  return { store, dispose };
}

async function postgresStore() {
  const schema = freshSchema();
  const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2 });
  const dispose = async () => {
    await store.close();
    await dropSchema(schema);
  };
  return { store, dispose };
}

const stores: Array<[string, () => Promise<{ store: TaskStore; dispose: () => Promise<void> }>]> = [
  ['sqlite', sqliteStore],
  ['postgres', postgresStore],
];

const row = (name: string, lastTick: number): ScheduleRow => ({
  name, task: 'ping', params: { company_id: '73' }, tenantId: '73', cron: null, every: '1m', timezone: null, overlap: false,
  catchUp: 'latest', enabled: true, source: 'api', createdAt: lastTick, updatedAt: lastTick, lastTick, lastTaskId: null,
  lastRunAt: null, skipped: 0, lastSkipReason: null, lastSkipAt: null,
});

describe.each(stores)('%s store: schedules', (_kind, open) => {
  it('inserts once per name, updates, moves past ticks by compare-and-set, deletes', async () => {
    const { store, dispose } = await open();
    try {
      await store.migrate();
      const t0 = at('2026-03-01T10:00:00Z');
      expect(await store.insertSchedule(row('a', t0))).toBe(true);
      expect(await store.insertSchedule(row('a', t0 + 1))).toBe(false);
      expect(await store.insertSchedule(row('b', t0))).toBe(true);
      expect(await store.schedule('a')).toEqual(row('a', t0));
      expect((await store.schedules()).map((s) => s.name)).toEqual(['a', 'b']);

      const changed = await store.updateSchedule('a', { updatedAt: t0 + 5, enabled: false, cron: '*/5 * * * *', every: null, params: { n: 1 } });
      expect(changed).toMatchObject({ enabled: false, cron: '*/5 * * * *', every: null, params: { n: 1 }, updatedAt: t0 + 5, overlap: false });
      expect(await store.updateSchedule('missing', { updatedAt: t0 })).toBeNull();

      // Two schedulers handle the tick after t0: only the first moves the schedule.
      const launched = { tick: t0 + MIN, at: t0 + MIN + 10, taskId: 'run-1', skipped: 2, skipReason: 'missed' };
      expect(await store.advanceSchedule('b', t0, launched)).toBe(true);
      expect(await store.advanceSchedule('b', t0, { ...launched, taskId: 'run-2' })).toBe(false);
      expect(await store.schedule('b')).toMatchObject({ lastTick: t0 + MIN, lastTaskId: 'run-1', lastRunAt: t0 + MIN + 10, skipped: 2, lastSkipReason: 'missed', lastSkipAt: t0 + MIN + 10 });
      // A skipped tick keeps the last run, and counts.
      expect(await store.advanceSchedule('b', t0 + MIN, { tick: t0 + 2 * MIN, at: t0 + 2 * MIN, taskId: null, skipped: 1, skipReason: 'still running' })).toBe(true);
      expect(await store.schedule('b')).toMatchObject({ lastTick: t0 + 2 * MIN, lastTaskId: 'run-1', lastRunAt: t0 + MIN + 10, skipped: 3, lastSkipReason: 'still running' });

      expect(await store.deleteSchedule('a')).toBe(true);
      expect(await store.deleteSchedule('a')).toBe(false);
      expect(await store.schedule('a')).toBeNull();
    } finally {
      await dispose();
    }
  });
});

// ---- the scheduler on a real ledger ------------------------------------------------------------

const ping = defineTask({
  name: 'ping',
  params: z.object({ company_id: z.string().optional(), n: z.number().int().default(0) }),
  async run(params) {
    return params;
  },
});

/** Runs until released, to keep a scheduled run live. */
let release: () => void = () => {};
const hold = defineTask({
  name: 'hold',
  params: z.object({}),
  async run(_params, ctx) {
    await new Promise<void>((resolve) => {
      release = resolve;
      ctx.signal.addEventListener('abort', () => resolve());
    });
    return 'released';
  },
});

const TASKS = [ping, hold];

/** A scheduler on the yard's ledger, driven by hand with a fake `now` (the yard's own is off). */
const schedulerOf = (yard: Taskyard) =>
  new Scheduler(yard.store, async (request) => (await yard.launch([request], '*', { internal: true }))[0]!, silentLogger);

async function scheduledRuns(yard: Taskyard, schedule: string) {
  const page = await yard.list({ names: ['ping', 'hold'], limit: 500 });
  return page.tasks.filter((t) => t.meta?.scheduled_by === schedule).sort((a, b) => String(a.meta!.scheduled_for).localeCompare(String(b.meta!.scheduled_for)));
}

describe('scheduler on a real ledger', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    release();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('launches each tick once, even with two schedulers racing, and says who launched the run', async () => {
    const { yard, close } = await startYard({ tasks: TASKS, scheduler: false, schedules: [{ name: 'minutely', task: 'ping', params: { n: 1 }, every: '1m', overlap: true }] });
    cleanups.push(close);
    const start = (await yard.schedules.get('minutely')).lastTick;
    const a = schedulerOf(yard);
    const b = schedulerOf(yard);
    const firstTick = Math.floor(start / MIN) * MIN + MIN;
    for (let i = 0; i < 5; i++) {
      const now = firstTick + i * MIN + 200;
      // Both read the schedule before either moves it: the same tick, twice.
      await Promise.all([a.runOnce(now), b.runOnce(now), a.runOnce(now)]);
    }
    const runs = await scheduledRuns(yard, 'minutely');
    expect(runs.map((r) => r.meta!.scheduled_for)).toEqual(isoAll([0, 1, 2, 3, 4].map((i) => firstTick + i * MIN)));
    expect(runs.every((r) => r.idempotencyKey === `schedule:minutely:${r.meta!.scheduled_for}`)).toBe(true);
    const view = await yard.schedules.get('minutely');
    expect(view.lastTick).toBe(firstTick + 4 * MIN);
    expect(view.lastRun?.taskId).toBe(runs.at(-1)!.id);
    expect(view.skipped).toBe(0);
  });

  it('catches up after a restart: the newest missed tick once by default, none, or all', async () => {
    const temp = tempDir();
    cleanups.push(async () => temp.cleanup());
    const schedules = [
      { name: 'latest', task: 'ping', every: '1m', overlap: true },
      { name: 'none', task: 'ping', every: '1m', overlap: true, catchUp: 'none' as const },
      { name: 'all', task: 'ping', every: '1m', overlap: true, catchUp: 'all' as const },
    ];
    const first = await startYard({ tasks: TASKS, scheduler: false, schedules, dir: temp.dir });
    const start = (await first.yard.schedules.get('latest')).lastTick;
    await first.yard.close();

    // Back up, ten minutes (and a bit) later: ten ticks were missed.
    const second = await startYard({ tasks: TASKS, scheduler: false, schedules, dir: temp.dir });
    cleanups.push(() => second.yard.close());
    const lastMissed = Math.floor(start / MIN) * MIN + 10 * MIN;
    await schedulerOf(second.yard).runOnce(lastMissed + 30_000);

    const latest = await scheduledRuns(second.yard, 'latest');
    expect(latest.map((r) => r.meta!.scheduled_for)).toEqual(isoAll([lastMissed]));
    const latestView = await second.yard.schedules.get('latest');
    expect(latestView.skipped).toBe(9);
    expect(latestView.lastSkipReason).toMatch(/missed while no scheduler ran \(catch-up: latest\)/);

    expect(await scheduledRuns(second.yard, 'none')).toHaveLength(0);
    expect((await second.yard.schedules.get('none')).skipped).toBe(10);

    const all = await scheduledRuns(second.yard, 'all');
    expect(all.map((r) => r.meta!.scheduled_for)).toEqual(isoAll(Array.from({ length: 10 }, (_, i) => lastMissed - (9 - i) * MIN)));
  });

  it('skips a tick while the previous run is live, and records why; overlap: true launches anyway', async () => {
    const { yard, close } = await startYard({
      tasks: TASKS,
      scheduler: false,
      schedules: [
        { name: 'single', task: 'hold', every: '1m' },
        { name: 'overlapping', task: 'ping', every: '1m', overlap: true },
      ],
    });
    cleanups.push(close);
    const scheduler = schedulerOf(yard);
    const firstTick = Math.floor((await yard.schedules.get('single')).lastTick / MIN) * MIN + MIN;
    await scheduler.runOnce(firstTick + 100);
    const [run] = await scheduledRuns(yard, 'single');
    await eventually(async () => (await yard.get(run!.id)).state === 'STARTED');

    await scheduler.runOnce(firstTick + MIN + 100);
    await scheduler.runOnce(firstTick + 2 * MIN + 100);
    expect(await scheduledRuns(yard, 'single')).toHaveLength(1);
    const view = await yard.schedules.get('single');
    expect(view.skipped).toBe(2);
    expect(view.lastSkipReason).toBe(`previous run ${run!.id} was still STARTED`);
    expect(view.lastRun).toMatchObject({ taskId: run!.id, state: 'STARTED' });
    expect(await scheduledRuns(yard, 'overlapping')).toHaveLength(3);

    // Once it has finished, the next tick runs again.
    release();
    await yard.waitFor(run!.id);
    await scheduler.runOnce(firstTick + 3 * MIN + 100);
    expect(await scheduledRuns(yard, 'single')).toHaveLength(2);
  });

  it('skips a tick whose key another launch took, and goes on with the next', async () => {
    const { yard, close } = await startYard({ tasks: TASKS, scheduler: false, schedules: [{ name: 'squatted', task: 'ping', every: '1m' }] });
    cleanups.push(close);
    const firstTick = Math.floor((await yard.schedules.get('squatted')).lastTick / MIN) * MIN + MIN;
    const key = `schedule:squatted:${new Date(firstTick).toISOString()}`;
    await yard.launch([{ name: 'ping', params: { n: 99 }, idempotencyKey: key }]);
    const scheduler = schedulerOf(yard);
    await scheduler.runOnce(firstTick + 100);
    expect(await scheduledRuns(yard, 'squatted')).toHaveLength(0);
    expect((await yard.schedules.get('squatted')).lastSkipReason).toMatch(/could not launch: Idempotency key .* already used with different params/);
    await scheduler.runOnce(firstTick + MIN + 100);
    expect((await scheduledRuns(yard, 'squatted')).map((r) => r.meta!.scheduled_for)).toEqual(isoAll([firstTick + MIN]));
  });

  it('fires on its own on the leader, with a real clock', async () => {
    const { yard, close } = await startYard({ tasks: TASKS, scheduler: { intervalMs: 100 }, schedules: [{ name: 'every-second', task: 'ping', every: '1s' }] });
    cleanups.push(close);
    const runs = await eventually(async () => {
      const found = await scheduledRuns(yard, 'every-second');
      return found.length >= 2 ? found : null;
    }, 6000);
    const ticks = runs.map((r) => Date.parse(String(r.meta!.scheduled_for)));
    expect(ticks[1]! - ticks[0]!).toBe(1000);
  });

  it('stores code schedules at start: a change keeps the API switch, a removed one goes', async () => {
    const temp = tempDir();
    cleanups.push(async () => temp.cleanup());
    const first = await startYard({ tasks: TASKS, scheduler: false, dir: temp.dir, schedules: [{ name: 'a', task: 'ping', every: '1m' }, { name: 'b', task: 'ping', every: '1h' }] });
    await first.yard.schedules.update('a', { enabled: false });
    await first.yard.close();
    const second = await startYard({ tasks: TASKS, scheduler: false, dir: temp.dir, schedules: [{ name: 'a', task: 'ping', cron: '*/5 * * * *', params: { n: 2 } }] });
    cleanups.push(() => second.yard.close());
    const list = await second.yard.schedules.list();
    expect(list.map((s) => s.name)).toEqual(['a']);
    expect(list[0]).toMatchObject({ source: 'code', cron: '*/5 * * * *', every: null, params: { n: 2 }, enabled: false, nextRuns: [] });
    await expect(startYard({ tasks: TASKS, scheduler: false, schedules: [{ name: 'x', task: 'nope', every: '1m' }] })).rejects.toThrow(/Unknown task type: nope/);
  });
});

// ---- the HTTP API ------------------------------------------------------------------------------

const KEYS: ApiKey[] = [
  { key: 'admin-key-0123456789', role: 'admin', tenants: '*' },
  { key: 'operator-key-0123456789', role: 'operator', tenants: '*' },
  { key: 'viewer-73-key-0123456789', role: 'viewer', tenants: ['73'] },
  { key: 'admin-73-key-0123456789', role: 'admin', tenants: ['73'] },
];
const as = (key: string) => ({ authorization: `Bearer ${key}` });
const ADMIN = as('admin-key-0123456789');

describe('schedules API', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  afterEach(async () => server?.close());

  const api = (path: string, init: Parameters<typeof http>[1] = {}) => http(`${server.url}${path}`, { ...init, headers: { ...ADMIN, ...init.headers } });

  it('creates, lists, reads, changes, disables and deletes a schedule', async () => {
    server = await startServer({ tasks: TASKS, apiKeys: KEYS, scheduler: false });
    const created = await api('/api/schedules', { body: { name: 'nightly', task: 'ping', params: { company_id: '73' }, cron: '30 2 * * *', timezone: 'America/Santiago' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'nightly', task: 'ping', params: { company_id: '73' }, tenant_id: '73', cron: '30 2 * * *', every: null,
      timezone: 'America/Santiago', overlap: false, catch_up: 'latest', enabled: true, source: 'api', last_run: null, skipped: 0, last_skip: null,
    });
    expect(created.body.next_runs).toHaveLength(5);
    // 02:30 in Santiago is 05:30 or 06:30 UTC, whatever the season.
    expect(created.body.next_runs.every((t: string) => /T0[56]:30:00.000Z$/.test(t))).toBe(true);

    const list = await api('/api/schedules');
    expect(list.status).toBe(200);
    expect(list.body.count).toBe(1);
    expect(list.body.schedules[0].name).toBe('nightly');

    const patched = await api('/api/schedules/nightly', { method: 'PATCH', body: { every: '15m', catch_up: 'all' } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ cron: null, every: '15m', timezone: null, catch_up: 'all' });
    expect(Date.parse(patched.body.next_runs[1]) - Date.parse(patched.body.next_runs[0])).toBe(15 * MIN);

    const disabled = await api('/api/schedules/nightly', { method: 'PATCH', body: { enabled: false } });
    expect(disabled.body).toMatchObject({ enabled: false, next_runs: [] });

    expect((await api('/api/schedules/nightly', { method: 'DELETE' })).status).toBe(204);
    expect((await api('/api/schedules/nightly')).status).toBe(404);
    expect((await api('/api/schedules/nightly', { method: 'DELETE' })).status).toBe(404);
  });

  it('refuses bad input with the right status, naming the problem', async () => {
    server = await startServer({ tasks: TASKS, apiKeys: KEYS, scheduler: false });
    const post = (body: unknown) => api('/api/schedules', { body });
    let res = await post({ name: 'x', task: 'ping', cron: 'every day' });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/cron "every day" is not a valid cron expression/);
    expect(res.body.errors[0].field).toBe('cron');
    res = await post({ name: 'x', task: 'ping', cron: '0 9 * * *', timezone: 'Europe/Atlantis' });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/timezone "Europe\/Atlantis" is not a known IANA time zone/);
    res = await post({ name: 'x', task: 'ping', every: 'often' });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/every must be a duration/);
    res = await post({ name: 'x', task: 'ping' });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/cron or every is required/);
    res = await post({ name: 'x', task: 'no.such.task', every: '1m' });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe('Unknown task type: no.such.task');
    res = await post({ name: 'x', task: 'ping', params: { n: 'one' }, every: '1m' });
    expect(res.status).toBe(422);
    expect(res.body.errors[0].field).toBe('n');
    res = await post({ name: 'has space', task: 'ping', every: '1m' });
    expect(res.status).toBe(422);
    res = await post({ name: 'x', task: 'ping', every: '1m', catchUp: 'all' });
    expect(res.status).toBe(422); // unknown field (it is catch_up)
    res = await post({ name: 'x', task: 'ping', every: '1m', catch_up: 'some' });
    expect(res.status).toBe(422);
    expect((await http(`${server.url}/api/schedules`, { raw: '{"name":', headers: { ...ADMIN, 'content-type': 'application/json' }, method: 'POST' })).status).toBe(400);

    expect((await post({ name: 'x', task: 'ping', every: '1m' })).status).toBe(201);
    res = await post({ name: 'x', task: 'ping', every: '2m' });
    expect(res.status).toBe(409);
    expect(res.body.detail).toBe('Schedule x already exists');
    res = await api('/api/schedules/x', { method: 'PATCH', body: { cron: '99 * * * *' } });
    expect(res.status).toBe(422);
    res = await api('/api/schedules/x', { method: 'PATCH', body: { name: 'y' } });
    expect(res.status).toBe(422);
    expect((await api('/api/schedules/missing', { method: 'PATCH', body: { enabled: false } })).status).toBe(404);
  });

  it('lets the API disable a code schedule, but not change or delete it', async () => {
    server = await startServer({ tasks: TASKS, apiKeys: KEYS, scheduler: false, schedules: [{ name: 'code-one', task: 'ping', every: '1h' }] });
    expect((await api('/api/schedules/code-one')).body.source).toBe('code');
    let res = await api('/api/schedules/code-one', { method: 'DELETE' });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/defined in code/);
    res = await api('/api/schedules/code-one', { method: 'PATCH', body: { every: '2h' } });
    expect(res.status).toBe(409);
    res = await api('/api/schedules/code-one', { method: 'PATCH', body: { enabled: false } });
    expect(res.status).toBe(200);
    expect(res.body.enabled).toBe(false);
  });

  it('reading is for every role, writing for admins; tenant keys see only their tenants', async () => {
    server = await startServer({ tasks: TASKS, apiKeys: KEYS, scheduler: false });
    expect((await api('/api/schedules', { body: { name: 't73', task: 'ping', params: { company_id: '73' }, every: '1h' } })).status).toBe(201);
    expect((await api('/api/schedules', { body: { name: 't4', task: 'ping', params: { company_id: '4' }, every: '1h' } })).status).toBe(201);
    expect((await api('/api/schedules', { body: { name: 'global', task: 'ping', every: '1h' } })).status).toBe(201);

    expect((await http(`${server.url}/api/schedules`)).status).toBe(401);
    const operator = as('operator-key-0123456789');
    expect((await http(`${server.url}/api/schedules`, { headers: operator })).body.count).toBe(3);
    expect((await http(`${server.url}/api/schedules`, { headers: operator, body: { name: 'op', task: 'ping', every: '1h' } })).status).toBe(403);
    expect((await http(`${server.url}/api/schedules/t4`, { headers: operator, method: 'PATCH', body: { enabled: false } })).status).toBe(403);
    expect((await http(`${server.url}/api/schedules/t4`, { headers: operator, method: 'DELETE' })).status).toBe(403);

    const viewer73 = as('viewer-73-key-0123456789');
    const seen = await http(`${server.url}/api/schedules`, { headers: viewer73 });
    expect(seen.body.schedules.map((s: { name: string }) => s.name)).toEqual(['t73']);
    expect((await http(`${server.url}/api/schedules/t4`, { headers: viewer73 })).status).toBe(404);
    expect((await http(`${server.url}/api/schedules/global`, { headers: viewer73 })).status).toBe(404);

    const admin73 = as('admin-73-key-0123456789');
    expect((await http(`${server.url}/api/schedules/t4`, { headers: admin73, method: 'DELETE' })).status).toBe(404);
    expect((await http(`${server.url}/api/schedules`, { headers: admin73, body: { name: 'mine', task: 'ping', params: { company_id: '4' }, every: '1h' } })).status).toBe(403);
    expect((await http(`${server.url}/api/schedules`, { headers: admin73, body: { name: 'mine', task: 'ping', params: { company_id: '73' }, every: '1h' } })).status).toBe(201);
    // Moving a schedule to another tenant is writing for that tenant.
    expect((await http(`${server.url}/api/schedules/mine`, { headers: admin73, method: 'PATCH', body: { params: { company_id: '4' } } })).status).toBe(403);
  });

  it('shows the last run, and the run shows its schedule', async () => {
    server = await startServer({ tasks: TASKS, apiKeys: KEYS, scheduler: { intervalMs: 100 } });
    expect((await api('/api/schedules', { body: { name: 'fast', task: 'ping', params: { n: 7 }, every: '1s' } })).status).toBe(201);
    const schedule = await eventually(async () => {
      const res = await api('/api/schedules/fast');
      return res.body.last_run?.state === 'SUCCESS' && res.body;
    }, 6000);
    const run = await api(`/api/tasks/${schedule.last_run.task_id}`);
    expect(run.body.meta).toEqual({ scheduled_by: 'fast', scheduled_for: expect.stringMatching(/:\d\d\.000Z$/) });
    expect(run.body.result).toEqual({ n: 7 });
  });

  it('is in the OpenAPI document', async () => {
    server = await startServer({ tasks: TASKS, scheduler: false });
    const doc = (await http(`${server.url}/openapi.json`)).body;
    expect(Object.keys(doc.paths['/api/schedules'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(doc.paths['/api/schedules/{name}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    expect(doc.paths['/api/schedules'].post.requestBody.content['application/json'].schema.properties.catch_up.enum).toEqual(['latest', 'none', 'all']);
  });
});

// ---- the command line -------------------------------------------------------------------------

/** The built CLI as a real child process (asynchronous: the server it talks to is in this process). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.TASKYARD_URL;
  delete env.TASKYARD_API_KEY;
  const bin = fileURLToPath(new URL('../bin/taskyard.js', import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('taskyard schedules', () => {
  it('lists schedules with their next run, and enables and disables them', async () => {
    await ensureBuilt();
    const server = await startServer({ tasks: TASKS, apiKeys: KEYS, scheduler: false, schedules: [{ name: 'hourly', task: 'ping', every: '1h' }] });
    try {
      const run = (key: string, ...args: string[]) => cli(['--url', server.url, '--api-key', key, ...args]);
      let res = await run('admin-key-0123456789', 'schedules');
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/^NAME\s+TASK\s+WHEN\s+ENABLED\s+NEXT RUN/);
      expect(res.stdout).toMatch(/hourly\s+ping\s+every 1h\s+yes\s+\d{4}-\d\d-\d\d \d\d:00:00/);

      res = await run('admin-key-0123456789', 'schedules', 'disable', 'hourly');
      expect(res.code).toBe(0);
      expect(res.stdout.trim()).toBe('Schedule hourly disabled');
      expect((await server.yard.schedules.get('hourly')).enabled).toBe(false);
      res = await run('admin-key-0123456789', '--json', 'schedules', 'enable', 'hourly');
      expect(JSON.parse(res.stdout)).toMatchObject({ name: 'hourly', enabled: true });

      res = await run('operator-key-0123456789', 'schedules', 'disable', 'hourly');
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/needs the admin role/);
      res = await run('admin-key-0123456789', 'schedules', 'enable', 'nope');
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/Schedule nope not found \(HTTP 404\)/);
    } finally {
      await server.close();
    }
  }, 180_000);
});

/** A port nothing listens on: bind to 0, read it, close. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('taskyard serve --tasks with a schedules export', () => {
  it('stores the module\'s schedules as code schedules and fires them', async () => {
    await ensureBuilt();
    // Inside the repository, so `import 'taskyard'` resolves to this package's built exports.
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    const work = mkdtempSync(join(ROOT, '.tmp', 'schedules-serve-'));
    writeFileSync(
      join(work, 'tasks.mjs'),
      `import { z } from 'zod';
import { defineTask } from 'taskyard';
export const beat = defineTask({ name: 'beat', params: z.object({ n: z.number() }), run: (p) => p });
export const schedules = [{ name: 'beat-every-second', task: 'beat', params: { n: 1 }, every: '1s' }];
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, TASKYARD_LOG_LEVEL: 'silent' };
    delete env.TASKYARD_API_KEYS;
    delete env.DATABASE_URL;
    const port = await freePort();
    const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/taskyard.js', import.meta.url)), 'serve', '--tasks', './tasks.mjs', '--port', String(port), '--data-dir', join(work, 'data')], { cwd: work, env });
    try {
      const url = `http://127.0.0.1:${port}`;
      const schedule = await eventually(async () => {
        const res = await http(`${url}/api/schedules/beat-every-second`);
        return res.status === 200 && res.body.last_run?.state === 'SUCCESS' && res.body;
      }, 30_000, 200);
      expect(schedule).toMatchObject({ source: 'code', task: 'beat', every: '1s' });
    } finally {
      child.kill('SIGKILL');
      rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);
});

// ---- three processes, one ledger ---------------------------------------------------------------

afterEach(stopChildren);
afterAll(removeDataDirs);

/** Short leases, so the three processes settle on a leader quickly. */
const PEERS = { TASKYARD_LEASE_MS: '2000', TASKYARD_HEARTBEAT_MS: '500' };

async function firesOncePerTick(env: Record<string, string>): Promise<void> {
  const dir = newDataDir();
  const servers: Server[] = [];
  for (let i = 0; i < 3; i++) servers.push(await startDemoServer(dir, { ...PEERS, ...env }));
  const [first, second, third] = servers as [Server, Server, Server];
  const created = await http(`${first.url}/api/schedules`, {
    body: { name: 'heartbeat', task: 'calculate_rating', params: { resource_id: 'r1' }, every: '1s', overlap: true, catch_up: 'all' },
  });
  expect(created.status).toBe(201);
  // Every process sees it (one ledger), whichever leads.
  expect((await http(`${third.url}/api/schedules/heartbeat`)).body.name).toBe('heartbeat');
  await eventually(async () => (await http(`${second.url}/api/schedules/heartbeat`)).body.skipped === 0 && (await scheduled(second)).length >= 4, 15_000, 200);
  expect((await http(`${second.url}/api/schedules/heartbeat`, { method: 'PATCH', body: { enabled: false } })).status).toBe(200);
  const lastTick = Date.parse((await http(`${first.url}/api/schedules/heartbeat`)).body.last_tick);

  const runs = await scheduled(third);
  const ticks = runs.map((r) => Date.parse(String((r.meta as { scheduled_for: string }).scheduled_for))).sort((a, b) => a - b);
  // One run per tick: no tick twice, none left out, through the last one handled.
  expect(new Set(ticks).size).toBe(ticks.length);
  expect(ticks.at(-1)).toBe(lastTick);
  expect(ticks.every((t, i) => i === 0 || t - ticks[i - 1]! === 1000)).toBe(true);
  expect(ticks[0]).toBe(Math.floor(Date.parse(created.body.created_at) / 1000) * 1000 + 1000);
  expect(ticks.length).toBe((lastTick - ticks[0]!) / 1000 + 1);
  const view = (await http(`${first.url}/api/schedules/heartbeat`)).body;
  expect(view.skipped).toBe(0);
  expect(runs.find((r) => r.task_id === view.last_run.task_id)).toBeTruthy();
}

async function scheduled(server: Server) {
  return [...(await allTasks(server.url)).values()].filter((t) => (t.meta as { scheduled_by?: string } | null)?.scheduled_by === 'heartbeat');
}

describe('three processes on one ledger', () => {
  it('fire a 1-second schedule once per tick (SQLite)', async () => {
    await firesOncePerTick({});
  }, 60_000);

  it('fire a 1-second schedule once per tick (PostgreSQL)', async () => {
    const db = await freshPostgresDatabase();
    try {
      await firesOncePerTick({ DATABASE_URL: db.url });
    } finally {
      stopChildren();
      await db.drop();
    }
  }, 60_000);
});
