/**
 * Cancels that stay cancelled, attempt history, the timeline, lifecycle log lines and the size
 * limits on what a run writes to the ledger. Real SQLite files and a real HTTP server.
 */
import { Writable } from 'node:stream';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { attemptsOf } from '../src/core/attempts.js';
import { defineTask } from '../src/core/definition.js';
import { cancelRequestChange } from '../src/engines/execution.js';
import { LocalEngine } from '../src/engines/local/engine.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { createTaskyard } from '../src/taskyard.js';
import { eventually, http, silentLogger, startServer, startYard, tempDir } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function server(tasks: Parameters<typeof startServer>[0]['tasks'], extra: Partial<Parameters<typeof startServer>[0]> = {}) {
  const s = await startServer({ tasks, softCancelWaitMs: 200, ...extra });
  closers.push(s.close);
  return s;
}

describe('a soft cancel of a running task', () => {
  it('is recorded at once and answered 202; the run then ends REVOKED with what it returned kept, never retried', async () => {
    const release = deferred();
    let runs = 0;
    const stubborn = defineTask({
      name: 'c.stubborn',
      params: z.object({ company_id: z.string() }),
      retry: { attempts: 3, backoff: 'fixed', delay: 10 },
      async run() {
        runs++;
        await release.promise; // ignores its signal
        return { rows: 42 };
      },
    });
    const { url } = await server([stubborn]);
    const launched = await http(`${url}/api/tasks`, { body: { task_type: 'c.stubborn', params: { company_id: '73' } } });
    const id = launched.body.task_id as string;
    await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'STARTED');

    const stop = await http(`${url}/api/tasks/${id}/stop/`, { body: { reason: 'user asked' } });
    expect(stop.status).toBe(202);
    expect(stop.body).toMatchObject({ state: 'STARTED', cancel_requested: 'soft', revoke_reason: 'user asked' });
    // Durable before the run has stopped: any reader sees the request.
    expect((await http(`${url}/api/tasks/${id}`)).body).toMatchObject({ state: 'STARTED', cancel_requested: 'soft' });

    release.resolve();
    const done = await eventually(async () => {
      const r = await http(`${url}/api/tasks/${id}`);
      return r.body.state === 'REVOKED' ? r.body : null;
    });
    expect(done).toMatchObject({ result: { rows: 42 }, attempt: 1, revoke_reason: 'user asked', cancel_requested: 'soft' });
    await sleep(100);
    expect(runs).toBe(1);
  });

  it('of a run that then throws a retryable error ends REVOKED, not RETRY', async () => {
    const release = deferred();
    const flaky = defineTask({
      name: 'c.flaky',
      retry: { attempts: 5, backoff: 'fixed', delay: 10 },
      async run() {
        await release.promise;
        throw new Error('boom after cancel');
      },
    });
    const { yard } = await startYard({ tasks: [flaky], softCancelWaitMs: 50 });
    closers.push(async () => yard.close());
    const id = await yard.submit('c.flaky');
    await eventually(async () => (await yard.get(id)).state === 'STARTED');
    expect(await yard.cancel(id, { reason: 'stop' })).toMatchObject({ state: 'STARTED', cancelRequested: 'soft' });
    release.resolve();
    const done = await yard.waitFor(id, 5000);
    expect(done).toMatchObject({ state: 'REVOKED', attempt: 1, revokeReason: 'stop' });
    expect(done.traceback).toContain('boom after cancel');
    const types = (await yard.timeline(id)).events.map((e) => e.type);
    expect(types).toEqual(['enqueued', 'started', 'cancel_requested', 'revoked']);
  });

  it('recorded by another process is honoured by the ledger: the owner cannot retry or succeed over it', async () => {
    // The request is written to the ledger file directly, as another process would.
    const release = deferred();
    const job = defineTask({
      name: 'c.remote',
      retry: { attempts: 3, backoff: 'fixed', delay: 10 },
      async run() {
        await release.promise;
        return 'finished anyway';
      },
    });
    const { yard, dir } = await startYard({ tasks: [job] });
    closers.push(async () => yard.close());
    const id = await yard.submit('c.remote');
    await eventually(async () => (await yard.get(id)).state === 'STARTED');
    const other = new SqliteStore({ filename: join(dir, 'taskyard.db') });
    await other.migrate();
    await other.apply([cancelRequestChange(await yard.get(id), 'from B', false)]);
    await other.close();
    release.resolve();
    const done = await yard.waitFor(id, 5000);
    expect(done).toMatchObject({ state: 'REVOKED', result: 'finished anyway', revokeReason: 'from B' });
  });
});

describe('recovery after a crash', () => {
  it('turns an orphaned run with a cancel request into REVOKED, never a retry', async () => {
    const temp = tempDir();
    closers.push(async () => temp.cleanup());
    const filename = join(temp.dir, 'taskyard.db');
    const job = defineTask({ name: 'c.orphan', retry: { attempts: 5 }, run: () => 'ran again' });
    // A ledger with a STARTED run whose process died after its cancel was recorded.
    const store = new SqliteStore({ filename });
    const yard = await createTaskyard({ tasks: [job], store, logger: silentLogger, execute: false });
    const id = await yard.submit('c.orphan');
    await store.claim({ limit: 1, now: Date.now() + 1, worker: 'dead@host:1' });
    await yard.cancel(id, { reason: 'before the crash' }).catch(() => {});
    await yard.close();

    const db = new Database(filename);
    // cancel() found no live holder and revoked it; put it back as the crash left it.
    db.prepare(`UPDATE taskyard_tasks SET state = 'STARTED', finished_at = NULL, cancel_requested = 'soft' WHERE id = ?`).run(id);
    db.close();

    const { yard: restarted } = await startYard({ tasks: [job], dir: temp.dir });
    closers.push(async () => restarted.close());
    const after = await restarted.waitFor(id, 5000);
    expect(after).toMatchObject({ state: 'REVOKED', attempt: 1, revokeReason: 'before the crash' });
  });
});

describe('history', () => {
  it('a manual retry continues the attempt count and keeps every earlier attempt readable', async () => {
    let calls = 0;
    const job = defineTask({
      name: 'h.twice',
      params: z.object({ company_id: z.string() }),
      retry: { attempts: 2, backoff: 'fixed', delay: 10 },
      run: () => {
        calls++;
        if (calls <= 2) throw new Error(`failure ${calls}`);
        return 'third time lucky';
      },
    });
    const { url } = await server([job]);
    const id = (await http(`${url}/api/tasks`, { body: { task_type: 'h.twice', params: { company_id: '4' } } })).body.task_id;
    await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'FAILURE');
    const failed = (await http(`${url}/api/tasks/${id}`)).body;
    expect(failed).toMatchObject({ attempt: 2, error: 'failure 2' });

    const retried = await http(`${url}/api/tasks/${id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ state: 'PENDING', attempt: 2, max_attempts: 4 });
    await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'SUCCESS');

    const record = (await http(`${url}/api/tasks/${id}`)).body;
    expect(record).toMatchObject({ attempt: 3, result: 'third time lucky', error: null });
    expect(record.attempts.map((a: { attempt: number; outcome: string; error: string | null }) => [a.attempt, a.outcome, a.error])).toEqual([
      [1, 'retry', 'failure 1'],
      [2, 'failed', 'failure 2'],
      [3, 'succeeded', null],
    ]);
    for (const attempt of record.attempts) {
      expect(attempt.worker).toMatch(/^local@/);
      expect(Date.parse(attempt.finished_at)).toBeGreaterThanOrEqual(Date.parse(attempt.started_at));
    }
    expect(record.attempts[1].traceback).toContain('failure 2');
  });

  it('serves the timeline: transitions, progress and log lines, paged, and 404 outside the tenant scope', async () => {
    const job = defineTask({
      name: 'h.chatty',
      params: z.object({ company_id: z.string() }),
      async run(_p, ctx) {
        for (let i = 1; i <= 5; i++) {
          await ctx.progress(i * 20, `step ${i}`);
          ctx.log(`line ${i}`, { i });
        }
        return 'done';
      },
    });
    const { url } = await server([job], {
      apiKeys: [
        { key: 'admin-key-0123456789', role: 'admin', tenants: '*' },
        { key: 'tenant-4-key-0123456', role: 'viewer', tenants: ['4'] },
      ],
    });
    const admin = { authorization: 'Bearer admin-key-0123456789' };
    const id = (await http(`${url}/api/tasks`, { body: { task_type: 'h.chatty', params: { company_id: '73' } }, headers: admin })).body.task_id;
    await eventually(async () => (await http(`${url}/api/tasks/${id}`, { headers: admin })).body.state === 'SUCCESS');

    const all: Array<{ seq: number; type: string; data: Record<string, unknown> }> = [];
    let after = 0;
    for (let pages = 0; pages < 20; pages++) {
      const page = await http(`${url}/api/tasks/${id}/timeline?after=${after}&limit=4`, { headers: admin });
      expect(page.status).toBe(200);
      expect(page.body.events.length).toBeLessThanOrEqual(4);
      all.push(...page.body.events);
      if (page.body.next_after === null) break;
      after = page.body.next_after;
    }
    expect(all.map((e) => e.type)).toEqual([
      'enqueued', 'started',
      ...Array.from({ length: 5 }, () => ['progress', 'log']).flat(),
      'succeeded',
    ]);
    expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => a - b));
    expect(all.filter((e) => e.type === 'log').map((e) => e.data.message)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);

    const outside = await http(`${url}/api/tasks/${id}/timeline`, { headers: { authorization: 'Bearer tenant-4-key-0123456' } });
    expect(outside.status).toBe(404);
    expect((await http(`${url}/api/tasks/${id}/timeline?limit=0`, { headers: admin })).status).toBe(422);
    expect((await http(`${url}/api/tasks/00000000-0000-7000-8000-000000000000/timeline`, { headers: admin })).status).toBe(404);
  });
});

describe('attempts from the record', () => {
  it('a single attempt read from the record says what its timeline says', async () => {
    const release = deferred();
    const ok = defineTask({ name: 'a.ok', run: () => 'fine' });
    const bad = defineTask({ name: 'a.bad', retry: false, run: () => { throw new Error('broken'); } });
    const held = defineTask({ name: 'a.held', async run() { await release.promise; return 1; } });
    const { yard } = await startYard({ tasks: [ok, bad, held], softCancelWaitMs: 50 });
    closers.push(async () => yard.close());
    const ids = [await yard.submit('a.ok'), await yard.submit('a.bad'), await yard.submit('a.held')];
    await yard.waitFor(ids[0]!, 5000);
    await yard.waitFor(ids[1]!, 5000);
    await eventually(async () => (await yard.get(ids[2]!)).state === 'STARTED');
    expect((await yard.attempts(ids[2]!))[0]).toMatchObject({ attempt: 1, outcome: 'running', finishedAt: null });
    await yard.cancel(ids[2]!, { hard: true, reason: 'enough' });
    release.resolve();
    for (const id of ids) {
      // The same, but for the end time: the record's is when the outcome was decided, the event's
      // when it was committed, a few milliseconds later at most.
      const [fromTimeline] = attemptsOf((await yard.timeline(id, { limit: 1000 })).events);
      const [fromRecord] = await yard.attempts(id);
      expect({ ...fromRecord, finishedAt: 0 }).toEqual({ ...fromTimeline, finishedAt: 0 });
      expect(Math.abs(fromRecord!.finishedAt! - fromTimeline!.finishedAt!)).toBeLessThan(100);
    }
    expect((await yard.attempts(ids[1]!))[0]).toMatchObject({ outcome: 'failed', error: 'broken' });
    expect((await yard.attempts(ids[2]!))[0]).toMatchObject({ outcome: 'revoked', error: 'enough' });
  });
});

describe('Celery revoke', () => {
  it('says revoked only once the run is REVOKED or its cancel is recorded', async () => {
    const release = deferred();
    const job = defineTask({ name: 'r.wait', async run() { await release.promise; return 1; } });
    const { url } = await server([job], { plugins: (yard) => [(app: FastifyInstance) => celeryRoutes(app, yard)] });
    const id = (await http(`${url}/api/celery/tasks/launch`, { body: { task_type: 'r.wait', params: {} } })).body.task_id;
    await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'STARTED');
    const revoke = await http(`${url}/api/celery/tasks/${id}`, { method: 'DELETE' });
    expect(revoke.status).toBe(200);
    expect(revoke.body).toMatchObject({ task_id: id, status: 'revoked', terminate: false });
    expect((await http(`${url}/api/tasks/${id}`)).body.cancel_requested).toBe('soft');
    release.resolve();
    await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'REVOKED');
    // Revoking it again is a no-op that still says revoked.
    expect((await http(`${url}/api/celery/tasks/${id}`, { method: 'DELETE' })).body.status).toBe('revoked');
  });
});

describe('server log lines', () => {
  it('logs each launch, start, outcome, retry and cancel as one structured line', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    let calls = 0;
    const job = defineTask({
      name: 'l.job',
      params: z.object({ company_id: z.string() }),
      retry: { attempts: 2, backoff: 'fixed', delay: 10 },
      run: () => {
        if (++calls === 1) throw new Error('first try fails');
        return 'ok';
      },
    });
    const { yard } = await startYard({ tasks: [job], logger });
    closers.push(async () => yard.close());
    const id = await yard.submit('l.job', { company_id: '73' });
    await yard.waitFor(id, 5000);
    await sleep(20);
    const mine = lines.filter((l) => l.task_id === id);
    expect(mine.map((l) => l.msg)).toEqual(['task launched', 'task started', 'task will retry', 'task started', 'task succeeded']);
    const retry = mine.find((l) => l.msg === 'task will retry')!;
    expect(retry).toMatchObject({ name: 'l.job', tenant: '73', attempt: 1, error: 'first try fails' });
    expect(typeof retry.duration_ms).toBe('number');
    expect(mine.at(-1)).toMatchObject({ attempt: 2, tenant: '73' });
    expect(typeof mine.at(-1)!.duration_ms).toBe('number');
  });
});

describe('request log', () => {
  it('writes one line per request at debug level, and none at info', async () => {
    for (const level of ['debug', 'info'] as const) {
      const lines: Array<Record<string, unknown>> = [];
      const sink = new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
          done();
        },
      });
      const job = defineTask({ name: 'q.job', run: () => 1 });
      const { url, close } = await startServer({ tasks: [job], logger: pino({ level }, sink) });
      try {
        expect((await http(`${url}/api/tasks/?limit=1`)).status).toBe(200);
        await sleep(20);
        const requests = lines.filter((l) => l.msg === 'request');
        if (level === 'debug') expect(requests).toEqual([expect.objectContaining({ method: 'GET', url: '/api/tasks/?limit=1', status: 200, level: 20 })]);
        else expect(requests).toEqual([]);
      } finally {
        await close();
      }
    }
  });
});

describe('size limits', () => {
  it('refuses oversized params with 413, fails an oversized result clearly, and clips long messages', async () => {
    const big = defineTask({
      name: 's.big',
      params: z.object({ blob: z.string().default(''), resultKb: z.number().default(0) }),
      retry: { attempts: 3 },
      async run(p, ctx) {
        await ctx.progress(10, 'x'.repeat(5000));
        ctx.log('y'.repeat(5000));
        return { data: 'z'.repeat(p.resultKb * 1024) };
      },
    });
    const { url } = await server([big], { limits: { maxParamsBytes: 16 * 1024, maxResultBytes: 64 * 1024 } });
    const tooBig = await http(`${url}/api/tasks`, { body: { task_type: 's.big', params: { blob: 'a'.repeat(20 * 1024) } } });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.detail).toMatch(/params are \d+ bytes, over the 16384-byte limit/);

    const id = (await http(`${url}/api/tasks`, { body: { task_type: 's.big', params: { resultKb: 100 } } })).body.task_id;
    const failed = await eventually(async () => {
      const r = await http(`${url}/api/tasks/${id}`);
      return r.body.state === 'FAILURE' ? r.body : null;
    });
    // Not retried: the same result would be too large again.
    expect(failed).toMatchObject({ attempt: 1, result: null });
    expect(failed.error).toMatch(/over the 65536-byte limit/);
    const timeline = (await http(`${url}/api/tasks/${id}/timeline`)).body.events;
    const progress = timeline.find((e: { type: string }) => e.type === 'progress');
    expect(progress.data.message.length).toBe(1024);
    expect(timeline.find((e: { type: string }) => e.type === 'log').data.message.length).toBe(1024);

    const ok = (await http(`${url}/api/tasks`, { body: { task_type: 's.big', params: { resultKb: 10 } } })).body.task_id;
    await eventually(async () => (await http(`${url}/api/tasks/${ok}`)).body.state === 'SUCCESS');
  });
});

describe('a locked ledger', () => {
  it('answers 503 with Retry-After quickly instead of stalling every request', async () => {
    const job = defineTask({ name: 'k.noop', run: () => 1 });
    const temp = tempDir();
    const { url, yard } = await server([job], {
      dir: temp.dir,
      store: new SqliteStore({ filename: join(temp.dir, 'taskyard.db'), lockWaitMs: 500 }),
      engine: new LocalEngine({ pollIntervalMs: 50 }),
    });
    const existing = await yard.submit('k.noop');
    await yard.waitFor(existing, 5000);
    const other = new Database(join(temp.dir, 'taskyard.db'));
    other.pragma('busy_timeout = 0');
    other.prepare('BEGIN IMMEDIATE').run(); // holds the write lock, as a stuck process would
    try {
      const t0 = Date.now();
      const [launch, health, read] = await Promise.all([
        http(`${url}/api/tasks`, { body: { task_type: 'k.noop', params: {} } }),
        (async () => {
          const t = Date.now();
          const res = await http(`${url}/health`);
          return { ...res, ms: Date.now() - t };
        })(),
        http(`${url}/api/tasks/${existing}`),
      ]);
      expect(launch.status).toBe(503);
      expect(launch.headers.get('retry-after')).toBeTruthy();
      expect(Date.now() - t0).toBeLessThan(3000); // SQLite's own busy wait used to block for 5 s
      expect(health.status).toBe(200);
      expect(health.ms).toBeLessThan(1000);
      expect(read.status).toBe(200); // WAL readers are not blocked by a writer
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
    // Once the lock is gone, it works again by itself.
    const after = await http(`${url}/api/tasks`, { body: { task_type: 'k.noop', params: {} } });
    expect(after.status).toBe(202);
    temp.cleanup();
  });
});
