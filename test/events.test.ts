import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import type { TaskEvent } from '../src/core/events.js';
import type { ApiKey } from '../src/http/auth.js';
import type { Taskyard } from '../src/taskyard.js';
import { eventually, http, startServer } from './helpers.js';
import { SseClient } from './sse-client.js';

// ---- tasks -------------------------------------------------------------------------------

const work = defineTask({
  name: 'alpha.work',
  category: 'alpha',
  params: z.object({ company_id: z.string(), steps: z.number().int().min(0).default(2), delay_ms: z.number().int().default(5) }),
  async run(params, ctx) {
    for (let i = 1; i <= params.steps; i++) {
      await new Promise((r) => setTimeout(r, params.delay_ms));
      await ctx.progress((100 * i) / (params.steps + 1), `step ${i}`);
    }
    return { steps: params.steps };
  },
});

const other = defineTask({
  name: 'beta.job',
  category: 'beta',
  params: z.object({ company_id: z.string() }),
  async run() {
    return 'ok';
  },
});

/** Emits many large log lines, to flood a client that does not read. */
const chatty = defineTask({
  name: 'alpha.chatty',
  category: 'alpha',
  params: z.object({ company_id: z.string(), lines: z.number().int(), size: z.number().int() }),
  async run(params, ctx) {
    const text = 'x'.repeat(params.size);
    for (let i = 0; i < params.lines; i++) {
      ctx.log(text, { i });
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    return null;
  },
});

const tasks = [work, other, chatty];

const busSize = (yard: Taskyard): number => (yard as unknown as { bus: { size: number } }).bus.size;

/** Every ledger event after `afterSeq`, as the stream should have sent them. */
async function ledger(yard: Taskyard, afterSeq: number, filter: { category?: string; tenantId?: string } = {}): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  for (;;) {
    const page = await yard.store.events({ afterSeq, limit: 500, ...filter }, '*');
    out.push(...page);
    if (page.length < 500) return out;
    afterSeq = page.at(-1)!.seq;
  }
}

// ---- server ------------------------------------------------------------------------------

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function server(options: { heartbeatMs?: number; apiKeys?: ApiKey[]; maxBufferedBytes?: number } = {}) {
  const s = await startServer({
    tasks,
    apiKeys: options.apiKeys,
    sse: { heartbeatMs: options.heartbeatMs ?? 60_000, maxBufferedBytes: options.maxBufferedBytes },
  });
  const clients: SseClient[] = [];
  closers.push(async () => {
    for (const c of clients) c.close();
    await s.close();
  });
  const open = async (path: string, headers: Record<string, string> = {}, opts: { read?: boolean } = {}) => {
    const client = await SseClient.open(`${s.url}${path}`, headers, opts);
    clients.push(client);
    return client;
  };
  return { ...s, open };
}

// ---- tests -------------------------------------------------------------------------------

describe('GET /api/tasks/events', () => {
  it('streams a run from enqueued to succeeded, in order, with SSE headers', async () => {
    const { url, open, yard } = await server();
    const stream = await open('/api/tasks/events');
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(stream.headers['cache-control']).toBe('no-cache');
    expect(stream.headers['x-accel-buffering']).toBe('no');

    const launched = await http(`${url}/api/tasks`, { body: { task_type: 'alpha.work', params: { company_id: '73', steps: 2 } } });
    expect(launched.status).toBe(202);
    const id = launched.body.task_id as string;
    await eventually(() => stream.framesOf(id).some((f) => f.event === 'succeeded'));

    const frames = stream.framesOf(id);
    expect(frames.map((f) => f.event)).toEqual(['enqueued', 'started', 'progress', 'progress', 'succeeded']);
    expect(frames.map((f) => f.data.state)).toEqual(['PENDING', 'STARTED', 'STARTED', 'STARTED', 'SUCCESS']);
    const ids = frames.map((f) => f.id!);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(frames[2]!.data).toMatchObject({
      task_id: id,
      type: 'progress',
      name: 'alpha.work',
      task_type: 'alpha',
      tenant_id: '73',
      data: { progress: 33, message: 'step 1' },
    });
    expect(new Date(frames[0]!.data.at).toISOString()).toBe(frames[0]!.data.at);
    // What was streamed is exactly what the ledger recorded.
    const recorded = (await yard.store.events({ afterSeq: 0, limit: 100, taskId: id }, '*')).map((e) => e.seq);
    expect(ids).toEqual(recorded);
  });

  it('filters by task_type (category), name, company_id and task_id', async () => {
    const { yard, open } = await server();
    const byType = await open('/api/tasks/events?task_type=beta');
    const byName = await open('/api/tasks/events?name=alpha.work');
    const byCompany = await open('/api/tasks/events?company_id=4');
    const byTenant = await open('/api/tasks/events?tenant_id=73');

    const a73 = await yard.submit('alpha.work', { company_id: '73', steps: 1 });
    const b4 = await yard.submit('beta.job', { company_id: '4' });
    const a4 = await yard.submit('alpha.work', { company_id: '4', steps: 1 });
    await Promise.all([a73, b4, a4].map((id) => yard.waitFor(id)));
    // task_id filter with a replay from the start: the whole history of one task.
    const byTask = await open(`/api/tasks/events?task_id=${a4}&last_event_id=0`);

    const done = (s: SseClient, ids: string[]) => ids.every((id) => s.framesOf(id).some((f) => f.event === 'succeeded'));
    await eventually(() => done(byType, [b4]) && done(byName, [a73, a4]) && done(byCompany, [b4, a4]) && done(byTenant, [a73]) && done(byTask, [a4]));

    const tasksOf = (s: SseClient) => [...new Set(s.frames.map((f) => f.data.task_id))].sort();
    expect(tasksOf(byType)).toEqual([b4]);
    expect(tasksOf(byName)).toEqual([a73, a4].sort());
    expect(tasksOf(byCompany)).toEqual([b4, a4].sort());
    expect(tasksOf(byTenant)).toEqual([a73]);
    expect(tasksOf(byTask)).toEqual([a4]);
    expect(byTask.frames.map((f) => f.event)).toEqual(['enqueued', 'started', 'progress', 'succeeded']);
    expect(byType.frames.every((f) => f.data.task_type === 'beta')).toBe(true);
  });

  it('answers 422 JSON for a bad query and 404 JSON for an unknown task_id, before streaming', async () => {
    const { url } = await server();
    for (const query of ['last_event_id=abc', 'last_event_id=-1', 'task_type=', `name=${'x'.repeat(300)}`]) {
      const res = await http(`${url}/api/tasks/events?${query}`);
      expect(res.status, query).toBe(422);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(res.body.detail).toBeTruthy();
    }
    const badHeader = await http(`${url}/api/tasks/events`, { headers: { 'last-event-id': 'nope' } });
    expect(badHeader.status).toBe(422);
    const missing = await http(`${url}/api/tasks/events?task_id=0190d5f0-0000-7000-8000-000000000000`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: expect.stringContaining('not found') });
  });

  it('resumes with Last-Event-ID: replays missed events exactly once, then goes live', async () => {
    const { yard, open } = await server();
    const baseline = busSize(yard); // the app's own listeners (metrics)
    const first = await open('/api/tasks/events');
    const t1 = await yard.submit('alpha.work', { company_id: '73', steps: 1 });
    await eventually(() => first.framesOf(t1).some((f) => f.event === 'succeeded'));
    const lastSeen = first.lastId();
    first.close();
    await eventually(() => busSize(yard) === baseline);

    // Missed while disconnected: enough to need several replay pages.
    const missed = await yard.submitMany(Array.from({ length: 300 }, (_, i) => ({ name: 'beta.job', params: { company_id: String(i % 3) } })));
    await Promise.all(missed.map((id) => yard.waitFor(id)));
    const expected = await ledger(yard, lastSeen);
    expect(expected.length).toBeGreaterThan(500);

    const resumed = await open('/api/tasks/events', { 'Last-Event-ID': String(lastSeen) });
    await eventually(() => resumed.frames.length >= expected.length);
    expect(resumed.frames.map((f) => f.id)).toEqual(expected.map((e) => e.seq));

    // Then live.
    const t2 = await yard.submit('alpha.work', { company_id: '4', steps: 0 });
    await eventually(() => resumed.framesOf(t2).some((f) => f.event === 'succeeded'));
    const ids = resumed.frames.map((f) => f.id!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual((await ledger(yard, lastSeen)).map((e) => e.seq));
  });

  it('has no gap or duplicate when resuming while events keep coming', async () => {
    const { yard, open } = await server();
    // A long, bulky history (several MB), so the replay outgrows the socket buffers, has to
    // wait for the slow client, and live events arrive meanwhile.
    const history = await yard.submit('alpha.chatty', { company_id: '8', lines: 2500, size: 2048 });
    await yard.waitFor(history, 30_000);
    let producing = true;
    const producer = (async () => {
      while (producing) {
        await yard.submitMany(Array.from({ length: 20 }, () => ({ name: 'beta.job', params: { company_id: '9' } })));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    const stream = await open('/api/tasks/events?last_event_id=0', {}, { read: false });
    await new Promise((r) => setTimeout(r, 300)); // the client reads nothing yet
    stream.startReading();
    await new Promise((r) => setTimeout(r, 300));
    producing = false;
    await producer;
    const pending = await yard.list({ states: ['PENDING', 'STARTED', 'RETRY'], limit: 500 });
    await Promise.all(pending.tasks.map((t) => yard.waitFor(t.id)));
    const expected = (await ledger(yard, 0)).map((e) => e.seq);
    await eventually(() => stream.frames.length >= expected.length);
    await new Promise((r) => setTimeout(r, 50));
    expect(stream.closed).toBe(false);
    expect(stream.frames.map((f) => f.id)).toEqual(expected);
  });

  it('keeps tenants apart: a key for A never sees B, and B’s task_id is a 404', async () => {
    const apiKeys: ApiKey[] = [
      { key: 'admin-key-0123456789', role: 'admin', tenants: '*' },
      { key: 'tenant-a-key-0123456789', role: 'viewer', tenants: ['A'] },
      { key: 'tenant-b-key-0123456789', role: 'viewer', tenants: ['B'] },
    ];
    const { url, yard, open } = await server({ apiKeys });
    const asA = { authorization: 'Bearer tenant-a-key-0123456789' };

    const anonymous = await http(`${url}/api/tasks/events`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.detail).toMatch(/Authentication required/);
    const wrongKey = await http(`${url}/api/tasks/events`, { headers: { authorization: 'Bearer not-a-key-at-all-000' } });
    expect(wrongKey.status).toBe(401);

    const streamA = await open('/api/tasks/events', asA);
    const streamAasksB = await open('/api/tasks/events?company_id=B', asA);
    const streamB = await open('/api/tasks/events', { 'x-api-key': 'tenant-b-key-0123456789' });
    const streamAdmin = await open('/api/tasks/events', { authorization: 'Bearer admin-key-0123456789' });

    const a = await yard.submit('alpha.work', { company_id: 'A', steps: 1 });
    const b = await yard.submit('alpha.work', { company_id: 'B', steps: 1 });
    const none = await yard.submit('beta.job', { company_id: '' }); // no tenant: admins only
    await Promise.all([a, b, none].map((id) => yard.waitFor(id)));
    await eventually(() => [a, b, none].every((id) => streamAdmin.framesOf(id).some((f) => f.event === 'succeeded')));
    await eventually(() => streamA.framesOf(a).some((f) => f.event === 'succeeded') && streamB.framesOf(b).some((f) => f.event === 'succeeded'));

    expect(new Set(streamA.frames.map((f) => f.data.tenant_id))).toEqual(new Set(['A']));
    expect(new Set(streamB.frames.map((f) => f.data.tenant_id))).toEqual(new Set(['B']));
    expect(streamAasksB.frames).toEqual([]);

    // B's task, by id: 404 for A, live or replayed.
    const forA = await http(`${url}/api/tasks/events?task_id=${b}`, { headers: asA });
    expect(forA.status).toBe(404);
    const replayForA = await http(`${url}/api/tasks/events?task_id=${b}&last_event_id=0`, { headers: asA });
    expect(replayForA.status).toBe(404);
    // A full replay for A holds only A's events.
    const replayA = await open('/api/tasks/events', { ...asA, 'last-event-id': '0' });
    await eventually(() => replayA.framesOf(a).some((f) => f.event === 'succeeded'));
    await new Promise((r) => setTimeout(r, 50));
    expect(new Set(replayA.frames.map((f) => f.data.tenant_id))).toEqual(new Set(['A']));
    expect(replayA.frames.map((f) => f.id)).toEqual((await yard.store.events({ afterSeq: 0, limit: 500 }, ['A'])).map((e) => e.seq));
  });

  it('sends heartbeat comments', async () => {
    const { open } = await server({ heartbeatMs: 40 });
    const stream = await open('/api/tasks/events');
    await eventually(() => stream.comments.filter((c) => c === 'ping').length >= 2, 2000);
  });

  it('ends open streams when the server closes, so shutdown is not held up', async () => {
    const { open, close } = await server();
    const stream = await open('/api/tasks/events');
    const started = Date.now();
    await close();
    expect(Date.now() - started).toBeLessThan(3000);
    await eventually(() => stream.closed, 2000);
  });

  it('drops a client that stops reading instead of buffering without bound', async () => {
    const { yard, open } = await server({ maxBufferedBytes: 256 * 1024 });
    const baseline = busSize(yard);
    const stalled = await open('/api/tasks/events', {}, { read: false });
    const reader = await open('/api/tasks/events?task_type=beta');
    await eventually(() => busSize(yard) === baseline + 2);
    const id = await yard.submit('alpha.chatty', { company_id: '1', lines: 4000, size: 8192 });
    await yard.waitFor(id, 30_000);
    // The stalled client was cut off and its listener removed; the healthy one is untouched.
    await eventually(() => busSize(yard) === baseline + 1, 10_000);
    expect(reader.closed).toBe(false);
    stalled.res?.resume();
  });

  it('cleans up after 1,000 connect/disconnect cycles', async () => {
    const { yard, open } = await server({ heartbeatMs: 5 });
    const baseline = busSize(yard);
    const gc = (globalThis as { gc?: () => void }).gc;
    // Warm up, so lazily allocated buffers do not count as growth.
    for (let i = 0; i < 50; i++) (await open('/api/tasks/events')).close();
    await eventually(() => busSize(yard) === baseline);
    gc?.();
    const before = process.memoryUsage().rss;
    for (let batch = 0; batch < 50; batch++) {
      const streams = await Promise.all(Array.from({ length: 20 }, (_, i) => open(i % 2 ? '/api/tasks/events?last_event_id=0' : '/api/tasks/events?task_type=alpha')));
      for (const s of streams) s.close();
    }
    await eventually(() => busSize(yard) === baseline, 10_000);
    gc?.();
    const growth = process.memoryUsage().rss - before;
    expect(growth).toBeLessThan((gc ? 30 : 60) * 1024 * 1024);
    // Still serving.
    const stream = await open('/api/tasks/events');
    const id = await yard.submit('beta.job', { company_id: '1' });
    await eventually(() => stream.framesOf(id).some((f) => f.event === 'succeeded'));
  });
});
