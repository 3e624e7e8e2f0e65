/**
 * Batch operations and queue control on a real server and ledger: bulk cancel and retry by filter
 * (dry runs, paging, tenant scope), pause and resume of queues and task types (in one process, in
 * two processes on one ledger, and on BullMQ), purge, the queue list, roles and bad input.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import type { ApiKey } from '../src/http/auth.js';
import { jobIdOf } from '../src/engines/bullmq/jobs.js';
import { startCluster, type Cluster } from './bullmq-cluster.js';
import { eventually, http, startServer } from './helpers.js';
import { newDataDir, removeDataDirs, startDemoServer, stopChildren } from './processes.js';

const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  operator: 'operator-key-0123456789abcdef',
  tenant73: 'tenant73-key-0123456789abcdef',
  admin73: 'admin73-key-0123456789abcdef',
  viewer: 'viewer-key-0123456789abcdef',
};
const API_KEYS: ApiKey[] = [
  { key: KEYS.admin, role: 'admin', tenants: '*' },
  { key: KEYS.operator, role: 'operator', tenants: '*' },
  { key: KEYS.tenant73, role: 'operator', tenants: ['73'] },
  { key: KEYS.admin73, role: 'admin', tenants: ['73'] },
  { key: KEYS.viewer, role: 'viewer', tenants: '*' },
];

const quick = defineTask({ name: 'ctl.quick', params: z.object({ company_id: z.string() }), run: (p) => ({ company: p.company_id }) });
const report = defineTask({ name: 'ctl.report', queue: 'reports', params: z.object({ company_id: z.string() }), run: () => 'report' });
let failing = true;
const flaky = defineTask({
  name: 'ctl.flaky',
  retry: false,
  params: z.object({ company_id: z.string() }),
  run: () => {
    if (failing) throw new Error('fails while the test says so');
    return 'recovered';
  },
});
const tasks = [quick, report, flaky];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('over HTTP', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer({ tasks, apiKeys: API_KEYS });
  });
  afterAll(() => server.close());
  const api = (key: string, path: string, body?: unknown, method?: string) =>
    http(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` }, body, method: method ?? (body === undefined ? 'GET' : 'POST') });
  const post = (key: string, path: string, body: unknown = {}) => api(key, path, body);
  const launch = (company: string, name = 'ctl.quick') => post(KEYS.admin, '/api/tasks', { task_type: name, params: { company_id: company } }).then((r) => r.body.task_id as string);
  const state = async (id: string) => (await server.yard.get(id)).state;

  it('pausing a task type holds its runs PENDING (they are launched); resuming runs them', async () => {
    expect((await post(KEYS.operator, '/api/tasks/types/ctl.quick/pause')).status).toBe(403);
    expect((await post(KEYS.viewer, '/api/tasks/types/ctl.quick/pause')).status).toBe(403);
    // A pause holds every tenant's runs: an admin of some tenants may not set one.
    const limited = await post(KEYS.admin73, '/api/tasks/types/ctl.quick/pause');
    expect(limited.status).toBe(403);
    expect(limited.body.detail).toMatch(/all tenants/);
    expect((await post(KEYS.admin73, '/api/queues/reports/resume')).status).toBe(403);
    expect((await post(KEYS.admin, '/api/tasks/types/nope.nothing/pause')).status).toBe(404);
    const paused = await post(KEYS.admin, '/api/tasks/types/ctl.quick/pause');
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ kind: 'task_type', name: 'ctl.quick', paused: true, paused_at: expect.any(String) });

    const id = await launch('73');
    const other = await launch('73', 'ctl.report');
    await server.yard.waitFor(other, 5000); // other types still run
    await sleep(700);
    expect(await state(id)).toBe('PENDING');
    const queues = await api(KEYS.viewer, '/api/queues');
    expect(queues.body.paused_task_types).toEqual([expect.objectContaining({ kind: 'task_type', name: 'ctl.quick' })]);

    const resumed = await post(KEYS.admin, '/api/tasks/types/ctl.quick/resume');
    expect(resumed.body).toEqual({ kind: 'task_type', name: 'ctl.quick', paused: false, resumed: true });
    expect((await server.yard.waitFor(id, 5000)).state).toBe('SUCCESS');
    expect((await post(KEYS.admin, '/api/tasks/types/ctl.quick/resume')).body.resumed).toBe(false);
  });

  it('pausing a queue holds its runs; GET /api/queues shows depth and the paused flag', async () => {
    expect((await post(KEYS.admin, '/api/queues/no-such-queue/pause')).status).toBe(404);
    expect((await post(KEYS.operator, '/api/queues/reports/pause')).status).toBe(403);
    expect((await post(KEYS.admin, '/api/queues/reports/pause')).status).toBe(200);
    const ids = [await launch('73', 'ctl.report'), await launch('4', 'ctl.report')];
    const elsewhere = await launch('73');
    await server.yard.waitFor(elsewhere, 5000);
    await sleep(700);
    for (const id of ids) expect(await state(id)).toBe('PENDING');

    const all = await api(KEYS.viewer, '/api/queues');
    expect(all.status).toBe(200);
    expect(all.body.queues).toEqual(
      expect.arrayContaining([
        { name: 'reports', paused: true, waiting: 2, task_types: ['ctl.report'] },
        expect.objectContaining({ name: 'default', paused: false }),
      ]),
    );
    // A tenant key counts only its tenants' waiting runs.
    const mine = await api(KEYS.tenant73, '/api/queues');
    expect(mine.body.queues.find((q: { name: string }) => q.name === 'reports').waiting).toBe(1);

    await post(KEYS.admin, '/api/queues/reports/resume');
    for (const id of ids) expect((await server.yard.waitFor(id, 5000)).state).toBe('SUCCESS');
  });

  it('purge revokes the waiting runs of a queue with the reason in their timeline (admin only)', async () => {
    await post(KEYS.admin, '/api/queues/reports/pause');
    const ids = [await launch('73', 'ctl.report'), await launch('4', 'ctl.report'), await launch('4', 'ctl.report')];
    const kept = await launch('73'); // another queue
    expect((await post(KEYS.operator, '/api/queues/reports/purge')).status).toBe(403);
    expect((await post(KEYS.admin, '/api/queues/nowhere/purge')).status).toBe(404);
    expect((await post(KEYS.admin, '/api/queues/reports/purge', { reason: 'x'.repeat(1001) })).status).toBe(422);
    // An admin of tenant 73 purges only tenant 73's runs.
    const own = await post(KEYS.admin73, '/api/queues/reports/purge', { reason: 'bad batch' });
    expect(own.body).toMatchObject({ queue: 'reports', matched: 1, revoked: 1, skipped: 0, sample_ids: [ids[0]] });
    expect(await state(ids[1]!)).toBe('PENDING');
    const purged = await post(KEYS.admin, '/api/queues/reports/purge', { reason: 'bad batch' });
    expect(purged.status).toBe(200);
    expect(purged.body).toMatchObject({ queue: 'reports', matched: 2, revoked: 2, skipped: 0 });
    for (const id of ids) {
      const record = await server.yard.get(id);
      expect(record).toMatchObject({ state: 'REVOKED', revokeReason: 'purged: bad batch' });
      const timeline = await server.yard.timeline(id);
      expect(timeline.events.at(-1)).toMatchObject({ type: 'revoked', data: expect.objectContaining({ reason: 'purged: bad batch' }) });
    }
    expect((await server.yard.waitFor(kept, 5000)).state).toBe('SUCCESS');
    await post(KEYS.admin, '/api/queues/reports/resume');
  });

  it('a bulk action without a filter is a 400 unless it says all; bad filters are 422', async () => {
    const none = await post(KEYS.admin, '/api/tasks/bulk/cancel', {});
    expect(none.status).toBe(400);
    expect(none.body.detail).toMatch(/needs a filter.*"all": true/);
    expect((await post(KEYS.admin, '/api/tasks/bulk/retry', { dry_run: true })).status).toBe(400);
    expect((await post(KEYS.admin, '/api/tasks/bulk/cancel', { all: true, dry_run: true })).status).toBe(200);
    expect((await post(KEYS.admin, '/api/tasks/bulk/cancel', { state: ['DONE'] })).status).toBe(422);
    const finished = await post(KEYS.admin, '/api/tasks/bulk/cancel', { state: 'SUCCESS' });
    expect(finished.status).toBe(422);
    expect(finished.body.detail).toMatch(/cancel applies to PENDING, STARTED, RETRY runs, not SUCCESS/);
    expect((await post(KEYS.admin, '/api/tasks/bulk/retry', { state: ['PENDING'] })).status).toBe(422);
    expect((await post(KEYS.admin, '/api/tasks/bulk/cancel', { stat: 'PENDING' })).status).toBe(422);
    expect((await post(KEYS.admin, '/api/tasks/bulk/cancel', { since: 'yesterday' })).status).toBe(422);
    // task_type is a category here, as on the list: a task name there says where it belongs.
    const wrong = await post(KEYS.admin, '/api/tasks/bulk/cancel', { task_type: 'ctl.quick' });
    expect(wrong.status).toBe(422);
    expect(wrong.body.detail).toMatch(/name=ctl.quick/);
    expect((await post(KEYS.viewer, '/api/tasks/bulk/cancel', { all: true })).status).toBe(403);
    expect((await post(KEYS.admin, '/api/tasks/bulk/cancel', 'not an object')).status).toBe(422);
  });

  it('bulk cancel: a dry run counts and samples, the real one cancels page by page through the single cancel path', async () => {
    await post(KEYS.admin, '/api/queues/reports/pause');
    const ids = await server.yard.submitMany(Array.from({ length: 1100 }, (_, i) => ({ name: 'ctl.report', params: { company_id: i % 2 ? '73' : '4' } })));
    const dry = await post(KEYS.operator, '/api/tasks/bulk/cancel', { queue: 'reports', dry_run: true, sample_size: 5 });
    expect(dry.body).toMatchObject({ matched: 1100, cancelled: 0, skipped: 0, dry_run: true });
    expect(dry.body.sample_ids).toHaveLength(5);
    expect(ids).toContain(dry.body.sample_ids[0]);
    expect(await state(ids[0]!)).toBe('PENDING');

    // A tenant key touches only its tenants.
    const own = await post(KEYS.tenant73, '/api/tasks/bulk/cancel', { all: true, queue: ['reports'], reason: 'tenant clean-up' });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ matched: 550, cancelled: 550, skipped: 0, dry_run: false });
    expect(await state(ids[0]!)).toBe('PENDING'); // tenant 4
    expect((await server.yard.get(ids[1]!)).revokeReason).toBe('tenant clean-up'); // tenant 73

    const rest = await post(KEYS.operator, '/api/tasks/bulk/cancel', { name: 'ctl.report', company_id: '4', state: ['PENDING'] });
    expect(rest.body).toMatchObject({ matched: 550, cancelled: 550 });
    const left = await server.yard.list({ names: ['ctl.report'], states: ['PENDING'], limit: 10 });
    expect(left.tasks).toHaveLength(0);
    await post(KEYS.admin, '/api/queues/reports/resume');
  });

  it('bulk retry puts failed runs back through the single retry path; refused ones are skipped', async () => {
    failing = true;
    const ids = await Promise.all(['73', '73', '4'].map((c) => launch(c, 'ctl.flaky')));
    for (const id of ids) expect((await server.yard.waitFor(id, 5000)).state).toBe('FAILURE');
    failing = false;
    const dry = await post(KEYS.operator, '/api/tasks/bulk/retry', { name: ['ctl.flaky'], dry_run: true });
    expect(dry.body).toMatchObject({ matched: 3, retried: 0, dry_run: true });
    const mine = await post(KEYS.tenant73, '/api/tasks/bulk/retry', { name: 'ctl.flaky' });
    expect(mine.body).toMatchObject({ matched: 2, retried: 2, skipped: 0 });
    for (const id of ids.slice(0, 2)) {
      const done = await eventually(async () => ((await server.yard.get(id)).state === 'SUCCESS' ? server.yard.get(id) : null));
      expect(done).toMatchObject({ result: 'recovered', attempt: 2 });
    }
    expect(await state(ids[2]!)).toBe('FAILURE');
    // Nothing left to retry for tenant 73: the filter matches none.
    expect((await post(KEYS.tenant73, '/api/tasks/bulk/retry', { name: 'ctl.flaky' })).body).toMatchObject({ matched: 0, retried: 0 });
  });
});

describe('a pause holds across two processes on one ledger', () => {
  afterEach(stopChildren);
  afterAll(removeDataDirs);

  it('paused through one process, nothing of that type starts in either; resumed through the other, all run', async () => {
    const dir = newDataDir();
    const [a, b] = await Promise.all([startDemoServer(dir), startDemoServer(dir)]);
    expect((await http(`${a!.url}/api/tasks/types/calculate_rating/pause`, { method: 'POST' })).status).toBe(200);
    // The other process sees the pause within its refresh interval.
    await sleep(700);
    const ids: string[] = [];
    for (const server of [a!, b!, a!, b!]) {
      const res = await http(`${server.url}/api/tasks`, { body: { task_type: 'calculate_rating', params: { resource_id: `r-${ids.length}` } } });
      expect(res.status).toBe(202);
      ids.push(res.body.task_id);
    }
    await sleep(1500);
    for (const id of ids) expect((await http(`${b!.url}/api/tasks/${id}`)).body.state).toBe('PENDING');
    expect((await http(`${b!.url}/api/queues`)).body.paused_task_types[0]).toMatchObject({ name: 'calculate_rating' });

    expect((await http(`${b!.url}/api/tasks/types/calculate_rating/resume`, { method: 'POST' })).body.resumed).toBe(true);
    await eventually(async () => {
      const states = await Promise.all(ids.map(async (id) => (await http(`${a!.url}/api/tasks/${id}`)).body.state));
      return states.every((s) => s === 'SUCCESS');
    }, 20_000);
  }, 60_000);
});

describe('on BullMQ', () => {
  let cluster: Cluster | null = null;
  afterEach(async () => {
    await cluster?.close();
    cluster = null;
  });

  it('a worker puts jobs of a paused type back, delayed, until the pause ends; purge takes them out of Redis', async () => {
    cluster = await startCluster({ tasks });
    const { api } = cluster;
    await api.pause('task_type', 'ctl.quick');
    await api.pause('queue', 'reports');
    await sleep(700); // the worker's view of the pauses is refreshed
    const held = await api.submit('ctl.quick', { company_id: '73' });
    const inQueue = await api.submit('ctl.report', { company_id: '73' });
    const free = await api.submit('ctl.flaky', { company_id: '73' });
    await api.waitFor(free, 10_000);
    await sleep(1200);
    expect((await api.get(held)).state).toBe('PENDING');
    expect((await api.get(inQueue)).state).toBe('PENDING');
    expect(await cluster.hasJob(jobIdOf(await api.get(held)))).toBe(true);

    await api.resume('task_type', 'ctl.quick');
    expect((await api.waitFor(held, 10_000)).state).toBe('SUCCESS');

    const report = await api.purge('reports', 'obsolete');
    expect(report).toMatchObject({ matched: 1, acted: 1, skipped: 0 });
    const purged = await api.get(inQueue);
    expect(purged).toMatchObject({ state: 'REVOKED', revokeReason: 'purged: obsolete' });
    expect(await cluster.hasJob(jobIdOf(purged))).toBe(false);
  }, 30_000);
});
