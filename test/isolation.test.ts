/**
 * The tenant-isolation matrix: every endpoint of every router x {no key, wrong key, viewer,
 * operator, other tenant, admin}, against a real server with the demo's routers.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoApp, type DemoApp } from '../demo/app.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { ONBOARDING_TASKS } from '../demo/tasks/onboarding.js';
import type { ApiKey } from '../src/http/auth.js';
import { eventually, http, startServer, tempDir } from './helpers.js';

const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  operator: 'operator-key-73-0123456789',
  viewer: 'viewer-key-73-0123456789ab',
  other: 'operator-key-4-0123456789ab',
};
const apiKeys: ApiKey[] = [
  { key: KEYS.admin, role: 'admin', tenants: '*' },
  { key: KEYS.operator, role: 'operator', tenants: ['73'] },
  { key: KEYS.viewer, role: 'viewer', tenants: ['73'] },
  { key: KEYS.other, role: 'operator', tenants: ['4'] },
];
type Who = 'none' | 'wrong' | 'viewer' | 'operator' | 'other' | 'admin';
const WHO: Who[] = ['none', 'wrong', 'viewer', 'operator', 'other', 'admin'];
const headersOf = (who: Who): Record<string, string> =>
  who === 'none' ? {} : who === 'wrong' ? { authorization: 'Bearer not-a-real-key-000000000' } : { 'x-api-key': KEYS[who] };

let server: Awaited<ReturnType<typeof startServer>>;
let demo: DemoApp;
const temp = tempDir();
const previousScale = process.env.TASKYARD_DEMO_TIME_SCALE;

/** A waiting task of tenant 73 (delayed an hour), made fresh for each case. */
async function pendingTask(): Promise<string> {
  const res = await http(`${server.url}/api/tasks`, {
    headers: headersOf('admin'),
    body: { task_type: 'sii.sync_documents', params: { company_id: '73' }, countdown: 3600 },
  });
  expect(res.status).toBe(202);
  return res.body.task_id;
}
async function revokedTask(): Promise<string> {
  const id = await pendingTask();
  expect((await http(`${server.url}/api/tasks/${id}/stop`, { headers: headersOf('admin'), body: { hard: false } })).status).toBe(200);
  return id;
}
/** Finalize answers 200 with the live runs of an earlier finalize: stop them, so this one launches. */
async function noLiveOnboarding(): Promise<void> {
  const names = ONBOARDING_TASKS.map((t) => t.name);
  const live = await server.yard.list({ tenantId: '73', names, states: ['PENDING', 'STARTED', 'RETRY'], limit: 500 });
  for (const run of live.tasks) await server.yard.cancel(run.id, { hard: true }).catch(() => {});
}
async function reconciliationRow(): Promise<number> {
  const res = await http(`${server.url}/reconciliation-tasks/start/`, { headers: headersOf('admin'), body: { tenant_id: 73 } });
  expect(res.status).toBe(201);
  return res.body.id;
}

const launch73 = { task_type: 'sii.sync_documents', params: { company_id: '73' }, countdown: 3600 };

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Builds the path (and makes whatever the case needs). */
  path: string | (() => Promise<string>);
  body?: unknown;
  /** Expected status per principal; `none` and `wrong` are always 401. */
  expect: Partial<Record<Who, number>>;
  /** For lists: the other tenant gets 200 but must not see tenant 73's data. */
  otherSeesNothing?: (body: any) => boolean; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Runs before the request: makes tenant 73's data a list should hide, or clears what the case must not find. */
  setup?: () => Promise<unknown>;
  /** For lists: tenant 73's own keys (and the admin) see what `setup` made. */
  ownSees?: (body: any) => boolean; // eslint-disable-line @typescript-eslint/no-explicit-any
  sse?: boolean;
}

const READ = { viewer: 200, operator: 200, other: 404, admin: 200 };
const WRITE = (ok: number) => ({ viewer: 403, operator: ok, other: 404, admin: ok });
const LAUNCH = (ok: number) => ({ viewer: 403, operator: ok, other: 403, admin: ok });

const cases: Case[] = [
  // Native and unified API
  { name: 'list tasks', method: 'GET', path: '/api/tasks/?company_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, setup: pendingTask, ownSees: (b) => b.tasks.length > 0, otherSeesNothing: (b) => b.tasks.length === 0 },
  { name: 'task detail', method: 'GET', path: async () => `/api/tasks/${await pendingTask()}/`, expect: READ },
  { name: 'task status', method: 'GET', path: async () => `/api/tasks/${await pendingTask()}/status`, expect: READ },
  { name: 'launch', method: 'POST', path: '/api/tasks', body: launch73, expect: LAUNCH(202) },
  { name: 'batch launch', method: 'POST', path: '/api/tasks/batch', body: { tasks: [launch73] }, expect: LAUNCH(202) },
  { name: 'stop', method: 'POST', path: async () => `/api/tasks/${await pendingTask()}/stop/`, body: { hard: true }, expect: WRITE(200) },
  { name: 'cancel', method: 'POST', path: async () => `/api/tasks/${await pendingTask()}/cancel`, expect: WRITE(200) },
  { name: 'retry', method: 'POST', path: async () => `/api/tasks/${await revokedTask()}/retry`, expect: WRITE(202) },
  { name: 'statistics', method: 'GET', path: '/api/tasks/statistics/', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, setup: pendingTask, ownSees: (b) => b.by_name['sii.sync_documents']?.PENDING > 0, otherSeesNothing: (b) => !b.by_name['sii.sync_documents'] && b.workers === undefined },
  { name: 'types', method: 'GET', path: '/api/tasks/types/', expect: { viewer: 200, operator: 200, other: 200, admin: 200 } },
  { name: 'event stream of a task', method: 'GET', path: async () => `/api/tasks/events?task_id=${await pendingTask()}`, expect: READ, sse: true },
  // Celery-style API
  { name: 'celery list', method: 'GET', path: '/api/celery/tasks', expect: { viewer: 200, operator: 200, other: 200, admin: 200 } },
  { name: 'celery launch', method: 'POST', path: '/api/celery/tasks/launch', body: launch73, expect: LAUNCH(200) },
  { name: 'celery status', method: 'GET', path: async () => `/api/celery/tasks/${await pendingTask()}`, expect: READ },
  { name: 'celery revoke', method: 'DELETE', path: async () => `/api/celery/tasks/${await pendingTask()}?terminate=true`, expect: WRITE(200) },
  { name: 'celery retry', method: 'POST', path: async () => `/api/celery/tasks/${await revokedTask()}/retry`, expect: WRITE(200) },
  { name: 'celery stats', method: 'GET', path: '/api/celery/stats', expect: { viewer: 403, operator: 403, other: 403, admin: 200 } },
  // Company tracker and onboarding
  { name: 'company task status', method: 'GET', path: '/api/v1/companies/73/task_status/', expect: READ },
  { name: 'onboarding finalize', method: 'POST', path: '/api/v1/companies/73/onboarding/finalize/', setup: noLiveOnboarding, expect: WRITE(202) },
  // Migration-guide triggers: tenant-less maintenance, so only unscoped keys may launch them
  { name: 'rating recalculate', method: 'POST', path: '/api/tasks/rating/recalculate', expect: { viewer: 403, operator: 403, other: 403, admin: 202 } },
  { name: 'impressions sync', method: 'POST', path: '/api/tasks/impressions/sync', expect: { viewer: 403, operator: 403, other: 403, admin: 202 } },
  { name: 'cleanup sessions', method: 'POST', path: '/api/tasks/cleanup/sessions', body: { max_age_hours: 24 }, expect: { viewer: 403, operator: 403, other: 403, admin: 202 } },
  // Legacy reconciliation module
  { name: 'reconciliation start', method: 'POST', path: '/reconciliation-tasks/start/', body: { tenant_id: 73 }, expect: LAUNCH(201) },
  { name: 'reconciliation list', method: 'GET', path: '/reconciliation-tasks/?tenant_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, setup: reconciliationRow, ownSees: (b) => b.results.length > 0, otherSeesNothing: (b) => b.results.length === 0 },
  { name: 'reconciliation detail', method: 'GET', path: async () => `/reconciliation-tasks/${await reconciliationRow()}/`, expect: READ },
  { name: 'reconciliation cancel', method: 'POST', path: async () => `/reconciliation-tasks/${await reconciliationRow()}/cancel/`, body: { reason: 'matrix' }, expect: WRITE(200) },
  { name: 'reconciliation queued', method: 'GET', path: '/reconciliation-tasks/queued/?tenant_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, setup: reconciliationRow, ownSees: (b) => b.count > 0, otherSeesNothing: (b) => b.count === 0 },
  { name: 'reconciliation counts', method: 'GET', path: '/reconciliation-tasks/task_counts/?tenant_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, setup: reconciliationRow, ownSees: (b) => b.total > 0, otherSeesNothing: (b) => b.total === 0 },
];

beforeAll(async () => {
  process.env.TASKYARD_DEMO_TIME_SCALE = '5'; // reconciliation runs stay live for the whole matrix
  server = await startServer({
    tasks: demoTasks,
    categoryRules,
    apiKeys,
    plugins: (yard) => {
      demo = createDemoApp(yard, { ledgerFile: join(temp.dir, 'ledger.db') });
      return demo.plugins;
    },
  });
});

afterAll(async () => {
  await server.close();
  await demo.close();
  temp.cleanup();
  process.env.TASKYARD_DEMO_TIME_SCALE = previousScale;
});

async function request(c: Case, who: Who): Promise<{ status: number; body: unknown }> {
  await c.setup?.();
  const path = typeof c.path === 'string' ? c.path : await c.path();
  const headers = headersOf(who);
  if (c.sse) {
    const controller = new AbortController();
    const res = await fetch(`${server.url}${path}`, { headers, signal: controller.signal });
    controller.abort();
    return { status: res.status, body: null };
  }
  const res = await http(`${server.url}${path}`, { method: c.method, headers, body: c.body ?? (c.method === 'POST' ? {} : undefined) });
  return { status: res.status, body: res.body };
}

describe('tenant isolation matrix', () => {
  for (const c of cases) {
    for (const who of WHO) {
      const expected = who === 'none' || who === 'wrong' ? 401 : c.expect[who]!;
      it(`${c.method} ${c.name} as ${who} -> ${expected}`, async () => {
        const res = await request(c, who);
        expect(res.status, JSON.stringify(res.body)).toBe(expected);
        if (who === 'other' && c.otherSeesNothing) expect(c.otherSeesNothing(res.body), JSON.stringify(res.body)).toBe(true);
        if ((who === 'viewer' || who === 'operator' || who === 'admin') && c.ownSees) expect(c.ownSees(res.body), JSON.stringify(res.body)).toBe(true);
      });
    }
  }

  it('docs, OpenAPI and health need no key', async () => {
    for (const path of ['/openapi.json', '/docs', '/health']) {
      expect((await fetch(`${server.url}${path}`)).status, path).toBe(200);
    }
  });
});

// ---- the same scope over real data ---------------------------------------------------------

interface Frame {
  seq: number;
  data: { task_id: string; tenant_id: string | null; type: string };
}

/** A Server-Sent Events reader over fetch; `frames` fills as the stream is read. */
class EventStream {
  readonly frames: Frame[] = [];
  private constructor(
    readonly status: number,
    private readonly controller: AbortController,
  ) {}

  static async open(url: string, headers: Record<string, string>): Promise<EventStream> {
    const controller = new AbortController();
    // Headers arrive with the first write, after the stream has subscribed: nothing later is missed.
    const res = await fetch(url, { headers, signal: controller.signal });
    const stream = new EventStream(res.status, controller);
    if (res.status === 200) void stream.read(res.body!);
    else controller.abort();
    return stream;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /^id: (\d+)$/m.exec(block);
          const data = /^data: (.*)$/m.exec(block);
          if (id && data) this.frames.push({ seq: Number(id[1]), data: JSON.parse(data[1]!) });
        }
      }
    } catch {
      /* aborted */
    }
  }

  async until(check: (frames: Frame[]) => boolean, timeoutMs = 5000): Promise<Frame[]> {
    await eventually(() => check(this.frames), timeoutMs);
    return this.frames;
  }

  close(): void {
    this.controller.abort();
  }
}

describe("tenant isolation over both tenants' runs", () => {
  const DATA_KEYS = {
    admin: 'data-admin-key-0123456789ab',
    tenant4: 'data-operator-4-0123456789',
    // An admin role scoped to one tenant: may read Celery's worker stats, but only its own runs.
    admin4: 'data-admin-4-key-012345678',
  };
  let data: Awaited<ReturnType<typeof startServer>>;
  let dataDemo: DemoApp;
  const dataTemp = tempDir();
  const ids = { running73: '', delayed73: '', running4: '', delayed4: '' };
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const get = (path: string, key: string) => http(`${data.url}${path}`, { headers: as(key) });
  const launch = async (company_id: string, options: { months?: number; countdown?: number }) => {
    const body = { task_type: 'sii.sync_documents', params: { company_id, months: options.months }, countdown: options.countdown };
    const res = await http(`${data.url}/api/tasks`, { headers: as(DATA_KEYS.admin), body });
    expect(res.status).toBe(202);
    return res.body.task_id as string;
  };
  const stateOf = async (id: string) => (await get(`/api/tasks/${id}`, DATA_KEYS.admin)).body.state;
  let scaleBefore: string | undefined;

  beforeAll(async () => {
    // Twelve simulated months take a minute at this scale: the running runs stay STARTED throughout.
    scaleBefore = process.env.TASKYARD_DEMO_TIME_SCALE;
    process.env.TASKYARD_DEMO_TIME_SCALE = '5';
    data = await startServer({
      tasks: demoTasks,
      categoryRules,
      apiKeys: [
        { key: DATA_KEYS.admin, role: 'admin', tenants: '*' },
        { key: DATA_KEYS.tenant4, role: 'operator', tenants: ['4'] },
        { key: DATA_KEYS.admin4, role: 'admin', tenants: ['4'] },
      ],
      plugins: (yard) => {
        dataDemo = createDemoApp(yard, { ledgerFile: join(dataTemp.dir, 'ledger.db') });
        return dataDemo.plugins;
      },
    });
    // Tenant 73 first, so every one of its runs exists before tenant 4's are read.
    ids.running73 = await launch('73', { months: 12 });
    ids.delayed73 = await launch('73', { countdown: 3600 });
    ids.running4 = await launch('4', { months: 12 });
    ids.delayed4 = await launch('4', { countdown: 3600 });
    await eventually(async () => (await stateOf(ids.running73)) === 'STARTED' && (await stateOf(ids.running4)) === 'STARTED');
  });

  afterAll(async () => {
    await data.close();
    await dataDemo.close();
    dataTemp.cleanup();
    process.env.TASKYARD_DEMO_TIME_SCALE = scaleBefore;
  });

  it("the list shows a tenant-4 key its own runs and none of tenant 73's", async () => {
    const mine = await get('/api/tasks/?limit=500', DATA_KEYS.tenant4);
    expect(mine.status).toBe(200);
    const seen = mine.body.tasks.map((t: { task_id: string }) => t.task_id);
    expect(seen.sort()).toEqual([ids.running4, ids.delayed4].sort());
    expect(mine.body.tasks.every((t: { tenant_id: string }) => t.tenant_id === '4')).toBe(true);

    // Asking for tenant 73 by name gives nothing, though the admin sees its runs there.
    const foreign = await get('/api/tasks/?company_id=73', DATA_KEYS.tenant4);
    expect(foreign.status).toBe(200);
    expect(foreign.body).toMatchObject({ tasks: [], count: 0 });
    const admin = await get('/api/tasks/?company_id=73', DATA_KEYS.admin);
    expect(admin.body.tasks.map((t: { task_id: string }) => t.task_id).sort()).toEqual([ids.running73, ids.delayed73].sort());
    expect((await get('/api/tasks/?state=STARTED', DATA_KEYS.tenant4)).body.tasks.map((t: { task_id: string }) => t.task_id)).toEqual([ids.running4]);
  });

  it("statistics count only the key's tenants", async () => {
    const mine = await get('/api/tasks/statistics/', DATA_KEYS.tenant4);
    expect(mine.status).toBe(200);
    expect(mine.body.total).toBe(2);
    expect(mine.body.by_state).toMatchObject({ STARTED: 1, PENDING: 1, SUCCESS: 0, FAILURE: 0, REVOKED: 0, RETRY: 0 });
    expect(mine.body.by_name['sii.sync_documents']).toMatchObject({ STARTED: 1, PENDING: 1 });
    expect(mine.body.queue_depth).toEqual({ pending: 0, delayed: 1, retry: 0, by_queue: { default: 1 } });
    expect(mine.body.workers).toBeUndefined();

    const all = await get('/api/tasks/statistics/', DATA_KEYS.admin);
    expect(all.body.total).toBe(4);
    expect(all.body.queue_depth.delayed).toBe(2);
  });

  it("the event stream shows a tenant-4 key none of tenant 73's events, live or replayed", async () => {
    const tenant4 = await EventStream.open(`${data.url}/api/tasks/events`, as(DATA_KEYS.tenant4));
    const filtered73 = await EventStream.open(`${data.url}/api/tasks/events?company_id=73`, as(DATA_KEYS.tenant4));
    const admin = await EventStream.open(`${data.url}/api/tasks/events`, as(DATA_KEYS.admin));
    try {
      expect([tenant4.status, filtered73.status, admin.status]).toEqual([200, 200, 200]);
      // Fresh events of both tenants: 73's are committed before 4's last one.
      const live73 = await launch('73', { countdown: 3600 });
      const live4 = await launch('4', { countdown: 3600 });
      await admin.until((f) => f.some((e) => e.data.task_id === live73) && f.some((e) => e.data.task_id === live4));
      const seen = await tenant4.until((f) => f.some((e) => e.data.task_id === live4));
      expect(seen.filter((e) => e.data.tenant_id !== '4')).toEqual([]);
      expect(filtered73.frames).toEqual([]);
    } finally {
      for (const stream of [tenant4, filtered73, admin]) stream.close();
    }

    // Replay of the whole ledger from the start: exactly tenant 4's events, in order.
    const ledger = await data.yard.store.events({ afterSeq: 0, limit: 100_000 }, '*');
    const expected4 = ledger.filter((e) => e.tenantId === '4').map((e) => e.seq);
    expect(ledger.some((e) => e.tenantId === '73')).toBe(true);
    const replay = await EventStream.open(`${data.url}/api/tasks/events`, { ...as(DATA_KEYS.tenant4), 'last-event-id': '0' });
    try {
      const frames = await replay.until((f) => f.some((e) => e.seq >= expected4.at(-1)!));
      expect(frames.filter((e) => e.data.tenant_id !== '4')).toEqual([]);
      expect(frames.map((e) => e.seq).filter((seq) => seq <= expected4.at(-1)!)).toEqual(expected4);
    } finally {
      replay.close();
    }
    // The replay of tenant 73's stream, asked for by name, is empty: nothing arrives before a tenant-4 event would.
    const replay73 = await EventStream.open(`${data.url}/api/tasks/events?company_id=73&last_event_id=0`, as(DATA_KEYS.tenant4));
    const marker = await launch('4', { countdown: 3600 });
    const replay4 = await EventStream.open(`${data.url}/api/tasks/events?company_id=4&last_event_id=0`, as(DATA_KEYS.tenant4));
    try {
      await replay4.until((f) => f.some((e) => e.data.task_id === marker));
      expect(replay73.frames).toEqual([]);
    } finally {
      replay73.close();
      replay4.close();
    }
  });

  it("Celery stats show a tenant-4 admin key none of tenant 73's active or scheduled runs", async () => {
    const idsIn = (byWorker: Record<string, Array<{ id?: string; request?: { id: string } }>>) =>
      Object.values(byWorker).flat().map((t) => t.id ?? t.request!.id);

    const mine = await get('/api/celery/stats', DATA_KEYS.admin4);
    expect(mine.status).toBe(200);
    expect(idsIn(mine.body.active_tasks)).toEqual([ids.running4]);
    expect(idsIn(mine.body.scheduled_tasks)).toContain(ids.delayed4);
    expect(idsIn(mine.body.scheduled_tasks)).not.toContain(ids.delayed73);

    const all = await get('/api/celery/stats', DATA_KEYS.admin);
    expect(idsIn(all.body.active_tasks).sort()).toEqual([ids.running73, ids.running4].sort());
    expect(idsIn(all.body.scheduled_tasks)).toContain(ids.delayed73);
  });
});
