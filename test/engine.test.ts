/**
 * Library-level tests of the Taskyard runtime and the local engine, on real SQLite files.
 * Nothing is mocked: tasks really run, time really passes, threads are really killed.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, type AnyTaskDefinition } from '../src/core/definition.js';
import { NonRetryableError } from '../src/core/errors.js';
import type { TaskEvent } from '../src/core/events.js';
import type { Hooks, Taskyard } from '../src/taskyard.js';
import { eventually, startYard, tempDir, type TestYardOptions } from './helpers.js';
import { threadTasks } from './fixtures/thread-tasks.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const THREAD_TASKS_MODULE = new URL('./fixtures/thread-tasks.ts', import.meta.url).href;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

async function yardWith(tasks: AnyTaskDefinition[], extra: Partial<TestYardOptions> = {}) {
  const started = await startYard({ tasks, ...extra });
  cleanups.push(started.close);
  return started;
}

const stateOf = async (yard: Taskyard, id: string) => (await yard.get(id)).state;

/** Tracks how many runs are active at once, overall and per key. */
function concurrencyMeter() {
  const active = new Map<string, number>();
  const max = new Map<string, number>();
  return {
    async measure(key: string, ms: number) {
      for (const k of [key, '*']) {
        active.set(k, (active.get(k) ?? 0) + 1);
        max.set(k, Math.max(max.get(k) ?? 0, active.get(k)!));
      }
      await sleep(ms);
      for (const k of [key, '*']) active.set(k, active.get(k)! - 1);
    },
    max: (key: string) => max.get(key) ?? 0,
  };
}

describe('submit, get, list, stats', () => {
  it('runs a task and records it in the ledger', async () => {
    const echo = defineTask({
      name: 'alpha.echo',
      params: z.object({ company_id: z.string(), n: z.number().default(1) }),
      async run(p) {
        return { n: p.n * 2 };
      },
    });
    const { yard } = await yardWith([echo]);
    const id = await yard.submit('alpha.echo', { company_id: '7', n: 21 });
    expect(id).toMatch(UUID_V7);

    const done = await yard.waitFor(id, 5000);
    expect(done).toMatchObject({
      id,
      name: 'alpha.echo',
      category: 'alpha',
      state: 'SUCCESS',
      result: { n: 42 },
      tenantId: '7',
      attempt: 1,
      maxAttempts: 3,
      progress: 100,
      params: { company_id: '7', n: 21 },
      error: null,
      engine: 'local',
    });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt!).toBeGreaterThanOrEqual(done.startedAt!);
    expect(done.worker).toMatch(/^local@/);
    expect(await yard.get(id)).toEqual(done);

    const page = await yard.list({ limit: 10 });
    expect(page.tasks.map((t) => t.id)).toEqual([id]);
    expect(page.nextCursor).toBeNull();

    const stats = await yard.stats();
    expect(stats.byState.SUCCESS).toBe(1);
    expect(stats.byName['alpha.echo']!.SUCCESS).toBe(1);
    expect(stats.byCategory.alpha!.SUCCESS).toBe(1);
    expect(stats.workers).toHaveLength(1);
    expect(stats.workers[0]!.processed).toBe(1);
  });

  it('applies param defaults and rejects unknown names, bad params and unknown ids', async () => {
    const echo = defineTask({ name: 'alpha.defaults', params: z.object({ n: z.number().default(5) }), run: (p) => p.n });
    const { yard } = await yardWith([echo]);
    const id = await yard.submit('alpha.defaults');
    expect((await yard.get(id)).params).toEqual({ n: 5 });
    await expect(yard.submit('nope.nothing', {})).rejects.toMatchObject({ code: 'unknown_task_type' });
    await expect(yard.submit('alpha.defaults', { n: 'x' })).rejects.toMatchObject({ code: 'invalid_params' });
    await expect(yard.get('00000000-0000-7000-8000-000000000000')).rejects.toMatchObject({ code: 'task_not_found' });
    expect((await yard.waitFor(id, 5000)).result).toBe(5);
  });

  it('lists newest first with filters and a cursor', async () => {
    const a = defineTask({ name: 'alpha.one', params: z.object({ company_id: z.string() }), run: () => 1 });
    const b = defineTask({ name: 'beta.two', params: z.object({ company_id: z.string() }), run: () => 2 });
    const { yard } = await yardWith([a, b]);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await yard.submit(i % 2 ? 'beta.two' : 'alpha.one', { company_id: String(i % 3) }));
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await yard.list({ limit: 3, cursor });
      seen.push(...page.tasks.map((t) => t.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    expect((await yard.list({ limit: 50, names: ['beta.two'] })).tasks).toHaveLength(3);
    expect((await yard.list({ limit: 50, categories: ['alpha'] })).tasks).toHaveLength(4);
    expect((await yard.list({ limit: 50, tenantId: '0' })).tasks).toHaveLength(3);
    expect((await yard.list({ limit: 50, states: ['FAILURE'] })).tasks).toHaveLength(0);
    expect((await yard.list({ limit: 50 }, ['1'])).tasks.every((t) => t.tenantId === '1')).toBe(true);
  });
});

describe('scheduling', () => {
  it('runs higher priority first when concurrency is 1', async () => {
    const gate = deferred();
    const order: string[] = [];
    const blocker = defineTask({ name: 'p.blocker', run: () => gate.promise });
    const job = defineTask({
      name: 'p.job',
      params: z.object({ label: z.string() }),
      run: (p) => {
        order.push(p.label);
      },
    });
    const { yard } = await yardWith([blocker, job], { engineOptions: { concurrency: 1, pollIntervalMs: 50 } });
    const b = await yard.submit('p.blocker');
    await eventually(async () => (await stateOf(yard, b)) === 'STARTED');
    const ids = [
      await yard.submit('p.job', { label: 'low' }, { priority: -5 }),
      await yard.submit('p.job', { label: 'mid' }),
      await yard.submit('p.job', { label: 'high' }, { priority: 10 }),
      await yard.submit('p.job', { label: 'high2' }, { priority: 10 }),
    ];
    expect((await yard.get(ids[2]!)).priority).toBe(10);
    gate.resolve();
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));
    expect(order).toEqual(['high', 'high2', 'mid', 'low']);
  });

  it('delays a run by countdown or eta: PENDING with an eta, then runs after it', async () => {
    const startedAt = new Map<string, number>();
    const job = defineTask({
      name: 'd.job',
      run: (_p, ctx) => {
        startedAt.set(ctx.taskId, Date.now());
      },
    });
    const { yard } = await yardWith([job]);

    const before = Date.now();
    const byCountdown = await yard.submit('d.job', {}, { countdown: 0.4 });
    const byEta = await yard.submit('d.job', {}, { eta: new Date(before + 300) });
    const byIsoEta = await yard.submit('d.job', {}, { eta: new Date(before + 350).toISOString() });
    const pastEta = await yard.submit('d.job', {}, { eta: before - 60_000 });

    const delayed = await yard.get(byCountdown);
    expect(delayed.state).toBe('PENDING');
    expect(delayed.runAt).toBeGreaterThanOrEqual(before + 400);
    expect(delayed.runAt).toBeLessThan(before + 400 + 1000);
    expect((await yard.get(byEta)).runAt).toBe(before + 300);

    await sleep(150);
    expect(await stateOf(yard, byCountdown)).toBe('PENDING');
    expect(await stateOf(yard, byEta)).toBe('PENDING');
    expect(startedAt.has(byCountdown)).toBe(false);

    for (const id of [byCountdown, byEta, byIsoEta, pastEta]) {
      const done = await yard.waitFor(id, 5000);
      expect(done.state).toBe('SUCCESS');
      expect(startedAt.get(id)!).toBeGreaterThanOrEqual(done.runAt);
      // The engine wakes for the eta instead of waiting for a slow poll.
      expect(startedAt.get(id)! - done.runAt).toBeLessThan(400);
    }
    expect(startedAt.get(pastEta)! - before).toBeLessThan(300);
  });

  it('honours the global concurrency limit', async () => {
    const meter = concurrencyMeter();
    const job = defineTask({ name: 'c.job', run: () => meter.measure('job', 80) });
    const { yard } = await yardWith([job], { engineOptions: { concurrency: 2, pollIntervalMs: 50 } });
    const ids = await yard.submitMany(Array.from({ length: 6 }, () => ({ name: 'c.job' })));
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));
    expect(meter.max('*')).toBe(2);
  });

  it('honours per-queue limits while other queues run in parallel', async () => {
    const meter = concurrencyMeter();
    const inQueue = defineTask({ name: 'c.in_q', queue: 'q', run: () => meter.measure('q', 80) });
    const free = defineTask({
      name: 'c.free',
      run: (_p, ctx) => meter.measure(ctx.name === 'c.free' && queueOf.get(ctx.taskId) === 'q' ? 'q' : 'free', 80),
    });
    const queueOf = new Map<string, string>();
    const { yard } = await yardWith([inQueue, free], { engineOptions: { concurrency: 10, queues: { q: 1 }, pollIntervalMs: 50 } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await yard.submit('c.in_q'));
    // A queue given at submit time counts against that queue too.
    for (let i = 0; i < 2; i++) {
      const id = await yard.submit('c.free', {}, { queue: 'q' });
      queueOf.set(id, 'q');
      ids.push(id);
    }
    for (let i = 0; i < 4; i++) ids.push(await yard.submit('c.free'));
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));
    expect(meter.max('q')).toBe(1);
    expect(meter.max('free')).toBeGreaterThan(1);
  });

  it('honours per-definition concurrency', async () => {
    const meter = concurrencyMeter();
    const single = defineTask({ name: 'c.single', concurrency: 1, run: () => meter.measure('single', 60) });
    const other = defineTask({ name: 'c.other', run: () => meter.measure('other', 60) });
    const { yard } = await yardWith([single, other], { engineOptions: { concurrency: 10, pollIntervalMs: 50 } });
    const ids = await yard.submitMany([
      ...Array.from({ length: 4 }, () => ({ name: 'c.single' })),
      ...Array.from({ length: 4 }, () => ({ name: 'c.other' })),
    ]);
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));
    expect(meter.max('single')).toBe(1);
    expect(meter.max('other')).toBeGreaterThan(1);
  });

  it('honours a queue limit also for definitions that have their own concurrency limit', async () => {
    const meter = concurrencyMeter();
    // Allowed 3 at once by its definition, but its queue allows only 1: the tighter limit wins.
    const limited = defineTask({ name: 'c.limited_in_q', queue: 'q', concurrency: 3, run: () => meter.measure('q', 80) });
    const { yard } = await yardWith([limited], { engineOptions: { concurrency: 10, queues: { q: 1 }, pollIntervalMs: 50 } });
    const ids = await yard.submitMany(Array.from({ length: 4 }, () => ({ name: 'c.limited_in_q' })));
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));
    expect(meter.max('q')).toBe(1);
  });
});

describe('retries', () => {
  it('retries with exponential backoff and jitter, then ends FAILURE with attempt = attempts', async () => {
    const starts: number[] = [];
    const attempts: number[] = [];
    const flaky = defineTask({
      name: 'r.always_fails',
      retry: { attempts: 3, delay: 100, jitter: 0.2, backoff: 'exponential' },
      run: (_p, ctx) => {
        starts.push(Date.now());
        attempts.push(ctx.attempt);
        throw new Error(`boom ${ctx.attempt}`);
      },
    });
    const { yard } = await yardWith([flaky]);
    const retryEvents: TaskEvent[] = [];
    yard.on('retry', (e) => retryEvents.push(e));
    const id = await yard.submit('r.always_fails');
    const done = await yard.waitFor(id, 5000);
    expect(done).toMatchObject({ state: 'FAILURE', attempt: 3, maxAttempts: 3, error: 'boom 3' });
    expect(done.traceback).toContain('boom 3');
    expect(attempts).toEqual([1, 2, 3]);

    const d = 100;
    const jitter = 0.2;
    const slack = 60; // timer and commit latency on a busy machine
    const gap1 = starts[1]! - starts[0]!;
    const gap2 = starts[2]! - starts[1]!;
    expect(gap1).toBeGreaterThanOrEqual(d * (1 - jitter) - 2);
    expect(gap1).toBeLessThanOrEqual(d + slack);
    expect(gap2).toBeGreaterThanOrEqual(2 * d * (1 - jitter) - 2);
    expect(gap2).toBeLessThanOrEqual(2 * d + slack);

    expect(retryEvents.map((e) => e.state)).toEqual(['RETRY', 'RETRY']);
    const delays = retryEvents.map((e) => e.data!.delay_ms as number);
    expect(delays[0]).toBeGreaterThanOrEqual(80);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeGreaterThanOrEqual(160);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it('caps the backoff at maxDelay', async () => {
    const starts: number[] = [];
    const flaky = defineTask({
      name: 'r.capped',
      retry: { attempts: 4, delay: 60, maxDelay: 80, jitter: 0 },
      run: () => {
        starts.push(Date.now());
        throw new Error('again');
      },
    });
    const { yard } = await yardWith([flaky]);
    const done = await yard.waitFor(await yard.submit('r.capped'), 5000);
    expect(done.attempt).toBe(4);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(58);
    for (const gap of gaps.slice(1)) {
      expect(gap).toBeGreaterThanOrEqual(78);
      expect(gap).toBeLessThanOrEqual(80 + 60);
    }
  });

  it('fails at once on NonRetryableError and on errors named nonRetryable', async () => {
    let runs = 0;
    const fatal = defineTask({
      name: 'r.fatal',
      retry: { attempts: 5, delay: 10 },
      run: () => {
        runs++;
        throw new NonRetryableError('Company not found');
      },
    });
    const named = defineTask({
      name: 'r.named',
      retry: { attempts: 5, delay: 10, nonRetryable: ['ValidationError'] },
      run: () => {
        runs++;
        throw Object.assign(new Error('bad data'), { name: 'ValidationError' });
      },
    });
    const { yard } = await yardWith([fatal, named]);
    const a = await yard.waitFor(await yard.submit('r.fatal'), 5000);
    const b = await yard.waitFor(await yard.submit('r.named'), 5000);
    expect(a).toMatchObject({ state: 'FAILURE', attempt: 1, maxAttempts: 5, error: 'Company not found' });
    expect(b).toMatchObject({ state: 'FAILURE', attempt: 1, error: 'bad data' });
    expect(runs).toBe(2);
  });

  it('retries until success and keeps the attempt count', async () => {
    const flaky = defineTask({
      name: 'r.third_time',
      retry: { attempts: 3, delay: 20 },
      run: (_p, ctx) => {
        if (ctx.attempt < 3) throw new Error(`not yet ${ctx.attempt}`);
        return 'third time lucky';
      },
    });
    const { yard } = await yardWith([flaky]);
    const done = await yard.waitFor(await yard.submit('r.third_time'), 5000);
    expect(done).toMatchObject({ state: 'SUCCESS', attempt: 3, result: 'third time lucky', error: null });
  });
});

describe('timeouts', () => {
  it('soft timeout aborts ctx.signal with SoftTimeLimitExceeded and lets the task clean up', async () => {
    const observed: { aborted?: boolean; reason?: string } = {};
    const soft = defineTask({
      name: 't.soft',
      retry: false,
      timeout: { soft: 150 },
      async run(_p, ctx) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        observed.aborted = ctx.signal.aborted;
        observed.reason = (ctx.signal.reason as Error).name;
        return { cleaned: true };
      },
    });
    const rethrow = defineTask({
      name: 't.soft_rethrow',
      retry: false,
      timeout: { soft: 100 },
      async run(_p, ctx) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        throw ctx.signal.reason;
      },
    });
    const { yard } = await yardWith([soft, rethrow]);
    const done = await yard.waitFor(await yard.submit('t.soft'), 5000);
    expect(observed).toEqual({ aborted: true, reason: 'SoftTimeLimitExceeded' });
    expect(done).toMatchObject({ state: 'SUCCESS', result: { cleaned: true } });
    expect(done.finishedAt! - done.startedAt!).toBeGreaterThanOrEqual(140);
    expect(done.finishedAt! - done.startedAt!).toBeLessThan(1000);

    const failed = await yard.waitFor(await yard.submit('t.soft_rethrow'), 5000);
    expect(failed.state).toBe('FAILURE');
    expect(failed.error).toMatch(/Soft time limit/);
  });

  it('hard timeout on a non-isolated task retries, then fails, though the run never returns', async () => {
    const starts: number[] = [];
    const reasons: string[] = [];
    const hung = defineTask({
      name: 't.hard',
      retry: { attempts: 2, delay: 50, jitter: 0 },
      timeout: { hard: 150 },
      async run(_p, ctx) {
        starts.push(Date.now());
        ctx.signal.addEventListener('abort', () => reasons.push((ctx.signal.reason as Error).name), { once: true });
        await new Promise(() => {});
      },
    });
    const { yard } = await yardWith([hung]);
    const states: string[] = [];
    yard.on('*', (e) => e.type !== 'progress' && states.push(e.state));
    const t0 = Date.now();
    const done = await yard.waitFor(await yard.submit('t.hard'), 5000);
    expect(done).toMatchObject({ state: 'FAILURE', attempt: 2 });
    expect(done.error).toMatch(/Hard time limit/);
    expect(states).toEqual(['PENDING', 'STARTED', 'RETRY', 'STARTED', 'FAILURE']);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(starts).toHaveLength(2);
    expect(reasons).toEqual(['TimeLimitExceeded', 'TimeLimitExceeded']);
  });

  it('hard timeout on an isolated task kills its thread', async () => {
    const { yard, dir } = await yardWith(threadTasks, { tasksModule: THREAD_TASKS_MODULE });
    const file = join(dir, 'beats-hard-timeout');
    const id = await yard.submit('fixture.busy_hard_timeout', { file, ms: 60_000 });
    const done = await yard.waitFor(id, 15_000);
    expect(done.state).toBe('FAILURE');
    expect(done.error).toMatch(/Hard time limit/);
    expect(done.finishedAt! - done.startedAt!).toBeGreaterThanOrEqual(1900);
    expect(done.finishedAt! - done.startedAt!).toBeLessThan(4000);
    // The thread did run (the file exists) and no longer does (the file stops growing).
    expect(existsSync(file)).toBe(true);
    await sleep(200);
    const size = statSync(file).size;
    await sleep(400);
    expect(statSync(file).size).toBe(size);
  });
});

describe('cancel', () => {
  it('soft cancel of a running task aborts its signal and ends REVOKED', async () => {
    const observed: { reason?: string } = {};
    const waiting = defineTask({
      name: 'k.soft',
      async run(_p, ctx) {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        observed.reason = (ctx.signal.reason as Error).name;
        throw ctx.signal.reason;
      },
    });
    const { yard } = await yardWith([waiting]);
    const id = await yard.submit('k.soft');
    await eventually(async () => (await stateOf(yard, id)) === 'STARTED');
    const record = await yard.cancel(id, { reason: 'user asked' });
    expect(record).toMatchObject({ state: 'REVOKED', revokeReason: 'user asked', cancelRequested: 'soft' });
    expect(record.finishedAt).not.toBeNull();
    expect(observed.reason).toBe('TaskRevokedError');
    // Not retried, although the run threw and had attempts left.
    await sleep(100);
    expect(await yard.get(id)).toMatchObject({ state: 'REVOKED', attempt: 1 });
  });

  it('hard cancel of a non-isolated task is REVOKED at once and its late result is discarded', async () => {
    const release = deferred();
    let aborted = false;
    const stubborn = defineTask({
      name: 'k.hard',
      async run(_p, ctx) {
        ctx.signal.addEventListener('abort', () => (aborted = true), { once: true });
        await release.promise;
        await ctx.progress(77, 'late').catch(() => {});
        return { late: true };
      },
    });
    const { yard } = await yardWith([stubborn]);
    const events: TaskEvent[] = [];
    yard.on('*', (e) => events.push(e));
    const id = await yard.submit('k.hard');
    await eventually(async () => (await stateOf(yard, id)) === 'STARTED');
    const t0 = Date.now();
    const record = await yard.cancel(id, { hard: true, reason: 'stop now' });
    expect(Date.now() - t0).toBeLessThan(300);
    expect(record).toMatchObject({ state: 'REVOKED', cancelRequested: 'hard', revokeReason: 'stop now', result: null });
    expect(aborted).toBe(true);

    release.resolve();
    await sleep(200);
    expect(await yard.get(id)).toMatchObject({ state: 'REVOKED', result: null });
    expect((await yard.get(id)).progress).not.toBe(77);
    expect(events.filter((e) => e.taskId === id).map((e) => e.type)).toEqual(['enqueued', 'started', 'cancel_requested', 'revoked']);
  });

  it('hard cancel of an isolated busy-looping task kills its thread', async () => {
    const { yard, dir } = await yardWith(threadTasks, { tasksModule: THREAD_TASKS_MODULE });
    const file = join(dir, 'beats-cancel');
    const id = await yard.submit('fixture.busy', { file });
    await eventually(() => existsSync(file) && statSync(file).size > 0, 15_000);
    expect((await yard.get(id)).progress).toBe(1); // it reported progress from the thread
    const t0 = Date.now();
    const record = await yard.cancel(id, { hard: true });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(record.state).toBe('REVOKED');
    await sleep(200);
    const size = statSync(file).size;
    await sleep(400);
    expect(statSync(file).size).toBe(size);
    expect((await yard.get(id)).state).toBe('REVOKED');

    // The slot is free and isolated tasks still work.
    const echo = await yard.waitFor(await yard.submit('fixture.thread_echo', { value: 21 }), 15_000);
    expect(echo).toMatchObject({ state: 'SUCCESS', result: { doubled: 42 } });
  });

  it('cancel of a PENDING task revokes it and it never runs', async () => {
    let runs = 0;
    const job = defineTask({
      name: 'k.later',
      run: () => {
        runs++;
      },
    });
    const { yard } = await yardWith([job]);
    const id = await yard.submit('k.later', {}, { countdown: 0.3 });
    const record = await yard.cancel(id, { reason: 'not needed' });
    expect(record).toMatchObject({ state: 'REVOKED', startedAt: null, revokeReason: 'not needed' });
    await sleep(600);
    expect(runs).toBe(0);
    expect(await yard.get(id)).toMatchObject({ state: 'REVOKED', startedAt: null, attempt: 0 });
  });

  it('cancel of a finished task is a conflict', async () => {
    const job = defineTask({ name: 'k.quick', run: () => 'done' });
    const { yard } = await yardWith([job]);
    const id = await yard.submit('k.quick');
    await yard.waitFor(id, 5000);
    await expect(yard.cancel(id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(yard.cancel(id, { hard: true })).rejects.toMatchObject({ code: 'conflict' });
    expect((await yard.get(id)).state).toBe('SUCCESS');
  });
});

describe('manual retry', () => {
  it('retries a FAILURE run, which runs again and can succeed', async () => {
    let calls = 0;
    const once = defineTask({
      name: 'x.once',
      retry: false,
      run: () => {
        calls++;
        if (calls === 1) throw new Error('first fails');
        return 'ok';
      },
    });
    const { yard } = await yardWith([once]);
    const id = await yard.submit('x.once');
    expect(await yard.waitFor(id, 5000)).toMatchObject({ state: 'FAILURE', error: 'first fails' });
    const again = await yard.retry(id);
    // The attempt count goes on, with a fresh retry budget; the last error stays until the next outcome.
    expect(again).toMatchObject({ id, state: 'PENDING', attempt: 1, maxAttempts: 2, error: 'first fails', finishedAt: null });
    expect(await yard.waitFor(id, 5000)).toMatchObject({ state: 'SUCCESS', result: 'ok', attempt: 2, error: null });
    expect(calls).toBe(2);
    const attempts = await yard.attempts(id);
    expect(attempts.map((a) => [a.attempt, a.outcome, a.error])).toEqual([
      [1, 'failed', 'first fails'],
      [2, 'succeeded', null],
    ]);
    expect(attempts[0]!.traceback).toContain('first fails');
  });

  it('retries a REVOKED run', async () => {
    const job = defineTask({ name: 'x.revoked', run: () => 'ran' });
    const { yard } = await yardWith([job]);
    const id = await yard.submit('x.revoked', {}, { countdown: 30 });
    await yard.cancel(id);
    await yard.retry(id);
    expect(await yard.waitFor(id, 5000)).toMatchObject({ state: 'SUCCESS', result: 'ran' });
  });

  it('refuses to retry a run that is STARTED, PENDING or SUCCESS', async () => {
    const gate = deferred();
    const slow = defineTask({ name: 'x.slow', run: () => gate.promise });
    const { yard } = await yardWith([slow]);
    const running = await yard.submit('x.slow');
    await eventually(async () => (await stateOf(yard, running)) === 'STARTED');
    await expect(yard.retry(running)).rejects.toMatchObject({ code: 'conflict' });
    const pending = await yard.submit('x.slow', {}, { countdown: 30 });
    await expect(yard.retry(pending)).rejects.toMatchObject({ code: 'conflict' });
    gate.resolve();
    await yard.waitFor(running, 5000);
    await expect(yard.retry(running)).rejects.toMatchObject({ code: 'conflict' });
    await expect(yard.retry('00000000-0000-7000-8000-000000000000')).rejects.toMatchObject({ code: 'task_not_found' });
    await yard.cancel(pending);
  });
});

describe('idempotency', () => {
  it('returns the same run for the same idempotency key and params, sequentially, concurrently and in one batch', async () => {
    let runs = 0;
    const job = defineTask({
      name: 'i.job',
      params: z.object({ n: z.number() }),
      run: () => {
        runs++;
      },
    });
    const { yard } = await yardWith([job]);
    const first = await yard.submit('i.job', { n: 1 }, { idempotencyKey: 'k1' });
    const second = await yard.submit('i.job', { n: 1 }, { idempotencyKey: 'k1' });
    expect(second).toBe(first);
    // The same key with other params is a conflict, not the first run (see test/security.test.ts).
    await expect(yard.submit('i.job', { n: 2 }, { idempotencyKey: 'k1' })).rejects.toMatchObject({ code: 'conflict' });

    const concurrent = await Promise.all(Array.from({ length: 5 }, () => yard.submit('i.job', { n: 5 }, { idempotencyKey: 'k2' })));
    expect(new Set(concurrent).size).toBe(1);

    const batch = await yard.submitMany([
      { name: 'i.job', params: { n: 1 }, idempotencyKey: 'k3' },
      { name: 'i.job', params: { n: 1 }, idempotencyKey: 'k3' },
      { name: 'i.job', params: { n: 3 } },
    ]);
    expect(batch[0]).toBe(batch[1]);
    expect(batch[2]).not.toBe(batch[0]);

    for (const id of [first, concurrent[0]!, batch[0]!, batch[2]!]) await yard.waitFor(id, 5000);
    expect((await yard.list({ limit: 50 })).tasks).toHaveLength(4);
    expect((await yard.get(first)).params).toEqual({ n: 1 });
    expect(runs).toBe(4);
  });
});

describe('events and hooks', () => {
  it('emits each transition once, in order, matching the durable timeline', async () => {
    const job = defineTask({
      name: 'e.job',
      async run(_p, ctx) {
        await ctx.progress(25, 'a');
        await ctx.progress(50, 'b');
        await ctx.progress(75, 'c');
        return 'done';
      },
    });
    const { yard } = await yardWith([job]);
    const events: TaskEvent[] = [];
    yard.on('*', (e) => events.push(e));
    const ids = await yard.submitMany(Array.from({ length: 10 }, () => ({ name: 'e.job' })));
    await Promise.all(ids.map((id) => yard.waitFor(id, 5000)));
    await sleep(50);

    // Globally: committed order, no duplicates.
    const seqs = events.map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);

    for (const id of ids) {
      const mine = events.filter((e) => e.taskId === id && e.type !== 'log');
      expect(mine.map((e) => e.type)).toEqual(['enqueued', 'started', 'progress', 'progress', 'progress', 'succeeded']);
      expect(mine.map((e) => e.state)).toEqual(['PENDING', 'STARTED', 'STARTED', 'STARTED', 'STARTED', 'SUCCESS']);
      expect(mine.slice(2, 5).map((e) => e.data!.progress)).toEqual([25, 50, 75]);
      const timeline = await yard.store.events({ afterSeq: 0, limit: 100, taskId: id }, '*');
      expect(timeline.map((e) => [e.seq, e.type])).toEqual(events.filter((e) => e.taskId === id).map((e) => [e.seq, e.type]));
    }
  });

  it('fires lifecycle hooks after each committed transition; a throwing hook harms nothing', async () => {
    const calls: Array<[keyof Hooks, string]> = [];
    const hook = (name: keyof Hooks) => (e: TaskEvent) => {
      calls.push([name, e.taskId]);
    };
    const hooks: Partial<Hooks> = {
      onEnqueued: hook('onEnqueued'),
      onStarted: hook('onStarted'),
      onProgress: hook('onProgress'),
      onSucceeded: hook('onSucceeded'),
      onFailed: hook('onFailed'),
      onRetry: hook('onRetry'),
      onRevoked: hook('onRevoked'),
    };
    const ok = defineTask({
      name: 'h.ok',
      async run(_p, ctx) {
        await ctx.progress(50);
        return 1;
      },
    });
    const flaky = defineTask({
      name: 'h.flaky',
      retry: { attempts: 2, delay: 10 },
      run: (_p, ctx) => {
        throw new Error(`fail ${ctx.attempt}`);
      },
    });
    const { yard } = await yardWith([ok, flaky], { hooks });
    const removeThrowing = yard.addHooks({
      onStarted: () => {
        throw new Error('hook bug');
      },
      onSucceeded: async () => {
        throw new Error('async hook bug');
      },
    });
    const a = await yard.submit('h.ok');
    const b = await yard.submit('h.flaky');
    const c = await yard.submit('h.ok', {}, { countdown: 30 });
    await yard.cancel(c);
    await yard.waitFor(a, 5000);
    await yard.waitFor(b, 5000);
    removeThrowing();
    await sleep(20);

    const of = (id: string) => calls.filter(([, t]) => t === id).map(([n]) => n);
    expect(of(a)).toEqual(['onEnqueued', 'onStarted', 'onProgress', 'onSucceeded']);
    expect(of(b)).toEqual(['onEnqueued', 'onStarted', 'onRetry', 'onStarted', 'onFailed']);
    expect(of(c)).toEqual(['onEnqueued', 'onRevoked']);
    expect((await yard.get(a)).state).toBe('SUCCESS');

    // Hooks see the committed state.
    let seen: string | undefined;
    yard.addHooks({ onSucceeded: async (e) => void (seen = (await yard.get(e.taskId)).state) });
    await yard.waitFor(await yard.submit('h.ok'), 5000);
    await eventually(() => seen);
    expect(seen).toBe('SUCCESS');
  });
});

describe('graceful stop', () => {
  it('requeues unfinished runs on close and completes them after a restart', async () => {
    const temp = tempDir();
    cleanups.push(temp.cleanup);
    let longMs = 5000;
    const quick = defineTask({ name: 'g.quick', run: () => sleep(50).then(() => 'quick') });
    const long = defineTask({
      name: 'g.long',
      async run() {
        await sleep(longMs);
        return 'long';
      },
    });
    const first = await startYard({ tasks: [quick, long], dir: temp.dir, shutdownGraceMs: 300 });
    const q = await first.yard.submit('g.quick');
    const l = await first.yard.submit('g.long');
    await eventually(async () => (await stateOf(first.yard, l)) === 'STARTED' && (await stateOf(first.yard, q)) === 'STARTED');
    const t0 = Date.now();
    await first.close();
    expect(Date.now() - t0).toBeLessThan(2000);

    longMs = 20;
    const second = await startYard({ tasks: [quick, long], dir: temp.dir });
    cleanups.push(second.close);
    const quickDone = await second.yard.get(q);
    expect(quickDone).toMatchObject({ state: 'SUCCESS', result: 'quick', attempt: 1 });
    const requeued = await second.yard.waitFor(l, 5000);
    // The interrupted attempt does not count: it was put back as if it never started.
    expect(requeued).toMatchObject({ state: 'SUCCESS', result: 'long', attempt: 1 });
    const timeline = await second.yard.store.events({ afterSeq: 0, limit: 100, taskId: l }, '*');
    expect(timeline.map((e) => e.type)).toEqual(['enqueued', 'started', 'enqueued', 'started', 'succeeded']);
  });
});
