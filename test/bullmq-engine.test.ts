/**
 * The BullMQ engine on real Redis and PostgreSQL: an API yard that dispatches and worker yards
 * that run, sharing one ledger. The ledger stays the truth: retries, revokes, duplicates, lost
 * hand-offs and cancels are all decided there.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { BullMQEngine } from '../src/engines/bullmq/engine.js';
import { jobIdOf } from '../src/engines/bullmq/jobs.js';
import { createWorker } from '../src/engines/bullmq/worker.js';
import { PostgresStore } from '../src/store/postgres.js';
import { tasksModuleUrl } from '../src/tasks-module.js';
import { bareRecord, startCluster, type Cluster } from './bullmq-cluster.js';
import { busyTask } from './fixtures/thread-tasks.js';
import { eventually, silentLogger, tempDir, TEST_DATABASE_URL } from './helpers.js';

const ran = new Map<string, number>();
const count = (id: string) => ran.set(id, (ran.get(id) ?? 0) + 1);
const startOrder: number[] = [];
const aborted = new Set<string>();

const echo = defineTask({
  name: 'bq.echo',
  params: z.object({ value: z.number(), company_id: z.string().optional() }),
  async run(p, ctx) {
    count(ctx.taskId);
    await ctx.progress(50, 'half way');
    ctx.log('working', { value: p.value });
    return { doubled: p.value * 2, pid: process.pid };
  },
});

const flaky = defineTask({
  name: 'bq.flaky',
  retry: { attempts: 3, backoff: 'fixed', delay: '300ms', jitter: 0 },
  async run(_p, ctx) {
    count(ctx.taskId);
    if (ctx.attempt === 1) throw new Error('first attempt fails');
    return { attempt: ctx.attempt };
  },
});

const slow = defineTask({
  name: 'bq.slow',
  params: z.object({ ms: z.number().default(1500), mark: z.number().default(0) }),
  async run(p, ctx) {
    count(ctx.taskId);
    startOrder.push(p.mark);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, p.ms);
      ctx.signal.addEventListener('abort', () => {
        aborted.add(ctx.taskId);
        clearTimeout(timer);
        resolve();
      });
    });
    return ctx.signal.aborted ? 'cleaned up' : 'done';
  },
});

/** How many of its runs are in their handler at once, at most. */
const gauge = { now: 0, max: 0 };
const gauged = defineTask({
  name: 'bq.gauged',
  params: z.object({ ms: z.number() }),
  async run(p, ctx) {
    count(ctx.taskId);
    gauge.max = Math.max(gauge.max, ++gauge.now);
    await new Promise((resolve) => setTimeout(resolve, p.ms));
    gauge.now--;
  },
});

const tasks = [echo, flaky, slow, gauged, busyTask];
const tasksModule = tasksModuleUrl(new URL('./fixtures/thread-tasks.ts', import.meta.url).href);

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('BullMQ engine', () => {
  it('runs on a worker, not the API process; the ledger has every state, progress, log and result', async () => {
    cluster = await startCluster({ tasks });
    const { api, workers } = cluster;
    const id = await api.submit('bq.echo', { value: 21, company_id: '73' });
    const done = await api.waitFor(id, 15_000);
    expect(done).toMatchObject({ state: 'SUCCESS', engine: 'bullmq', worker: workers[0]!.identity.id, attempt: 1, progress: 100 });
    expect(done.result).toEqual({ doubled: 42, pid: process.pid });
    const types = (await api.timeline(id)).events.map((e) => e.type);
    expect(types).toEqual(['enqueued', 'started', 'progress', 'log', 'succeeded']);
    // The API process holds no worker of its own; the stats list the live worker from the ledger.
    expect((await api.engine.info()).workers).toEqual([]);
    const stats = await api.stats();
    const listed = stats.workers.find((w) => w.name === workers[0]!.identity.id);
    expect(listed).toMatchObject({ engine: 'bullmq', pid: process.pid, concurrency: 5 });
    expect(listed!.host).toBeTruthy();
    // The finished job is not kept in Redis.
    expect(await cluster.hasJob(`${id}.1`)).toBe(false);
  });

  it('retries live in the ledger: a failed attempt is recorded as RETRY and the next attempt is a new delayed job', async () => {
    cluster = await startCluster({ tasks });
    const id = await cluster.api.submit('bq.flaky');
    const done = await cluster.api.waitFor(id, 15_000);
    expect(done).toMatchObject({ state: 'SUCCESS', attempt: 2, result: { attempt: 2 } });
    expect(ran.get(id)).toBe(2);
    const events = (await cluster.api.timeline(id)).events;
    expect(events.map((e) => e.type)).toEqual(['enqueued', 'started', 'retry', 'started', 'succeeded']);
    expect(events[2]!.data).toMatchObject({ attempt: 1, delay_ms: 300, error: 'first attempt fails' });
    // The second start waited out the ledger's backoff.
    expect(events[3]!.at - events[2]!.at).toBeGreaterThanOrEqual(280);
  });

  it('a revoked delayed job leaves Redis and never runs', async () => {
    cluster = await startCluster({ tasks });
    const id = await cluster.api.submit('bq.echo', { value: 1 }, { countdown: 1 });
    expect(await cluster.hasJob(`${id}.1`)).toBe(true);
    const revoked = await cluster.api.cancel(id);
    expect(revoked.state).toBe('REVOKED');
    expect(await cluster.hasJob(`${id}.1`)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect(ran.get(id)).toBeUndefined();
    expect((await cluster.api.get(id)).state).toBe('REVOKED');
  });

  it('a run revoked in the ledger while its job is still in Redis is dropped by the worker, not run', async () => {
    cluster = await startCluster({ tasks });
    const id = await cluster.api.submit('bq.echo', { value: 1 }, { countdown: 0.7 });
    const record = await cluster.api.get(id);
    // Revoked behind the engine's back (as by a process that died before removing the job).
    await cluster.api.store.apply([{ id, to: 'REVOKED', from: ['PENDING'], patch: { finishedAt: Date.now() }, event: 'revoked' }]);
    expect(await cluster.hasJob(jobIdOf(record))).toBe(true);
    await eventually(async () => expect(await cluster!.hasJob(jobIdOf(record))).toBe(false), 10_000);
    expect(ran.get(id)).toBeUndefined();
    expect((await cluster.api.get(id)).state).toBe('REVOKED');
  });

  it('a duplicate job for the same run never runs it twice', async () => {
    cluster = await startCluster({ tasks, workers: 2 });
    const id = await cluster.api.submit('bq.slow', { ms: 300 });
    const queue = cluster.rawQueue();
    await queue.add('bq.slow', { id }, { jobId: `${id}.dup`, removeOnComplete: true });
    await queue.add('bq.slow', { id }, { jobId: `${id}.dup2`, removeOnComplete: true });
    await cluster.api.waitFor(id, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(ran.get(id)).toBe(1);
    expect(await cluster.hasJob(`${id}.dup`)).toBe(false);
  });

  it('the sweeper delivers a run written to the ledger but never handed to Redis', async () => {
    cluster = await startCluster({ tasks });
    const record = bareRecord(cluster.api, 'bq.echo', { value: 5 });
    await cluster.api.store.insert([record]); // a launch that crashed before the hand-off
    expect(await cluster.hasJob(jobIdOf(record))).toBe(false);
    const done = await cluster.api.waitFor(record.id, 15_000);
    expect(done).toMatchObject({ state: 'SUCCESS', result: { doubled: 10 } });
    expect(ran.get(record.id)).toBe(1);
  });

  it('priorities map onto BullMQ: with one slot, the higher priority runs first', async () => {
    cluster = await startCluster({ tasks, workers: 0 });
    startOrder.length = 0;
    for (const [mark, priority] of [[1, 0], [2, 5], [3, -5], [4, 9]] as const) {
      await cluster.api.submit('bq.slow', { ms: 10, mark }, { priority });
    }
    await cluster.addWorker({ concurrency: 1 });
    await eventually(() => expect(startOrder).toHaveLength(4), 15_000);
    expect(startOrder).toEqual([4, 2, 1, 3]);
  });

  it('a soft cancel through the API process reaches the worker over the ledger feed and aborts ctx.signal', async () => {
    cluster = await startCluster({ tasks });
    const id = await cluster.api.submit('bq.slow', { ms: 20_000 });
    await eventually(async () => expect((await cluster!.api.get(id)).state).toBe('STARTED'), 10_000);
    const answer = await cluster.api.cancel(id, { reason: 'user asked' });
    expect(answer.state).toBe('REVOKED');
    expect(aborted.has(id)).toBe(true);
    expect(answer).toMatchObject({ revokeReason: 'user asked', result: 'cleaned up', cancelRequested: 'soft' });
  });

  it('a hard cancel kills an isolated run on the worker', async () => {
    cluster = await startCluster({ tasks, tasksModule });
    const temp = tempDir();
    try {
      const file = join(temp.dir, 'beats');
      writeFileSync(file, '');
      const id = await cluster.api.submit('fixture.busy', { file, ms: 60_000 });
      await eventually(() => expect(readFileSync(file, 'utf8').split('\n').length).toBeGreaterThan(5), 15_000);
      const answer = await cluster.api.cancel(id, { hard: true, reason: 'stop now' });
      await eventually(async () => expect((await cluster!.api.get(id)).state).toBe('REVOKED'), 5000);
      expect(answer.cancelRequested).toBe('hard');
      // The thread is dead: its heartbeat file stops growing.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const size = statSync(file).size;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(statSync(file).size).toBe(size);
    } finally {
      await temp.cleanup();
    }
  });

  it('a worker stopping gracefully puts an unfinished run back in the ledger and in Redis; another worker runs it', async () => {
    cluster = await startCluster({ tasks, workers: 0 });
    const first = await cluster.addWorker({ concurrency: 1, shutdownGraceMs: 200 });
    const id = await cluster.api.submit('bq.slow', { ms: 4000 });
    await eventually(async () => expect((await cluster!.api.get(id)).state).toBe('STARTED'), 10_000);
    await first.close();
    const back = await cluster.api.get(id);
    expect(back).toMatchObject({ state: 'PENDING', attempt: 0, worker: null });
    expect(await cluster.hasJob(`${id}.1`)).toBe(true);
    const second = await cluster.addWorker({ concurrency: 1 });
    const done = await cluster.api.waitFor(id, 15_000);
    expect(done).toMatchObject({ state: 'SUCCESS', attempt: 1, worker: second.identity.id });
  });

  it('an unreachable Redis at start-up is a clear error within seconds, not a hang', async () => {
    const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema: 'ty_unreachable_redis', poolSize: 1 });
    const started = Date.now();
    await expect(
      createWorker({ tasks, store, logger: silentLogger, redisUrl: 'redis://127.0.0.1:1', connectTimeoutMs: 1500 }),
    ).rejects.toThrow(/Redis at redis:\/\/127\.0\.0\.1:1\/? is unreachable .*REDIS_URL/);
    expect(Date.now() - started).toBeLessThan(6000);
    const { dropSchema } = await import('./helpers.js');
    await dropSchema('ty_unreachable_redis');
  });
});

describe('BullMQ engine with prefetch', () => {
  const startedCount = async () => (await cluster!.api.stats()).byState.STARTED ?? 0;

  it('starts prefetched runs in the ledger ahead of a slot, and never runs more than concurrency at once', async () => {
    cluster = await startCluster({ tasks, workers: 0 });
    gauge.now = gauge.max = 0;
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await cluster.api.submit('bq.gauged', { ms: 400 }));
    await cluster.addWorker({ concurrency: 2, prefetch: 2 });
    // Two running and two started ahead, waiting for a slot.
    await eventually(async () => expect(await startedCount()).toBe(4), 5000);
    for (const id of ids) expect(await cluster.api.waitFor(id, 15_000)).toMatchObject({ state: 'SUCCESS', attempt: 1 });
    expect(gauge.max).toBe(2);
    for (const id of ids) expect(ran.get(id)).toBe(1);
  });

  it('a prefetched run cancelled while it waits for a slot never runs and ends REVOKED', async () => {
    cluster = await startCluster({ tasks, workers: 0 });
    await cluster.addWorker({ concurrency: 1, prefetch: 1 });
    const holder = await cluster.api.submit('bq.slow', { ms: 20_000 });
    await eventually(async () => expect((await cluster!.api.get(holder)).state).toBe('STARTED'), 10_000);
    const waiting = await cluster.api.submit('bq.echo', { value: 3 });
    await eventually(async () => expect((await cluster!.api.get(waiting)).state).toBe('STARTED'), 10_000);
    const answer = await cluster.api.cancel(waiting, { reason: 'not needed' });
    expect(answer).toMatchObject({ state: 'REVOKED', revokeReason: 'not needed' });
    await cluster.api.cancel(holder);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ran.get(waiting)).toBeUndefined();
    expect((await cluster.api.get(waiting)).state).toBe('REVOKED');
  });

  it('a worker stopping puts its waiting prefetched runs back in the ledger and in Redis; another worker runs them', async () => {
    cluster = await startCluster({ tasks, workers: 0 });
    const first = await cluster.addWorker({ concurrency: 1, prefetch: 1, shutdownGraceMs: 200 });
    const holder = await cluster.api.submit('bq.slow', { ms: 4000 });
    await eventually(async () => expect((await cluster!.api.get(holder)).state).toBe('STARTED'), 10_000);
    const waiting = await cluster.api.submit('bq.echo', { value: 4 });
    await eventually(async () => expect((await cluster!.api.get(waiting)).state).toBe('STARTED'), 10_000);
    await first.close();
    expect(await cluster.api.get(waiting)).toMatchObject({ state: 'PENDING', attempt: 0, worker: null });
    expect(await cluster.hasJob(`${waiting}.1`)).toBe(true);
    expect(ran.get(waiting)).toBeUndefined();
    const second = await cluster.addWorker({ concurrency: 2 });
    for (const id of [holder, waiting]) expect(await cluster.api.waitFor(id, 15_000)).toMatchObject({ state: 'SUCCESS', attempt: 1, worker: second.identity.id });
    expect(ran.get(waiting)).toBe(1);
  });

  it('refuses a prefetch that is not a whole number', () => {
    expect(() => new BullMQEngine({ prefetch: -1 })).toThrow(/prefetch must be an integer >= 0/);
    expect(() => new BullMQEngine({ prefetch: 1.5 })).toThrow(/prefetch must be an integer >= 0/);
  });
});
