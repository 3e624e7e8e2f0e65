/**
 * Behaviour a mutation check found unguarded: each test here fails if the line it names is
 * broken. Cancelling a run that waits for a retry, cancelling a STARTED run that no live engine
 * holds, waking up for the next eta with a slow safety poll, and a fixed retry backoff.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, type AnyTaskDefinition } from '../src/core/definition.js';
import { DEFAULT_RETRY, retryDelayMs, type RetryPolicy } from '../src/core/retry.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import type { Taskyard } from '../src/taskyard.js';
import { eventually, http, startServer, startYard, tempDir, testStore, type TestYardOptions } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
});

async function yardWith(tasks: AnyTaskDefinition[], extra: Partial<TestYardOptions> = {}) {
  const started = await startYard({ tasks, ...extra });
  cleanups.push(started.close);
  return started;
}

async function serverWith(tasks: AnyTaskDefinition[], extra: Partial<Parameters<typeof startServer>[0]> = {}) {
  const started = await startServer({ tasks, ...extra });
  cleanups.push(started.close);
  return started;
}

function newDir(): string {
  const temp = tempDir('taskyard-gaps-');
  cleanups.push(temp.cleanup);
  return temp.dir;
}

/** Cancel over HTTP answers 200 (done) or 202 (requested); either way the run must end REVOKED. */
const CANCEL_ACCEPTED = [200, 202];

// ---- cancel of a run waiting for its retry (core/states: RETRY -> REVOKED) ------------------

describe('cancel of a run that waits for a retry', () => {
  /** Fails its first run, then waits an hour for the retry: it sits in RETRY. */
  const makeFlaky = (runs: string[]) =>
    defineTask({
      name: 'gaps.flaky',
      params: z.object({ company_id: z.string().optional() }),
      retry: { attempts: 3, delay: '1h', jitter: 0 },
      run: (_p, ctx) => {
        runs.push(ctx.taskId);
        throw new Error('first run fails');
      },
    });
  const untilRetry = (read: () => Promise<string>) => eventually(async () => (await read()) === 'RETRY', 5000);

  it('through the library: the run ends REVOKED and never runs again', async () => {
    const runs: string[] = [];
    const { yard } = await yardWith([makeFlaky(runs)]);
    const id = await yard.submit('gaps.flaky');
    await untilRetry(async () => (await yard.get(id)).state);

    const cancelled = await yard.cancel(id, { reason: 'not worth retrying' });
    expect(cancelled).toMatchObject({ state: 'REVOKED', revokeReason: 'not worth retrying' });
    expect(cancelled.finishedAt).not.toBeNull();
    expect((await yard.get(id)).state).toBe('REVOKED');
    expect(runs).toEqual([id]);
    // Finished: a second cancel is a conflict, not a silent no-op.
    await expect(yard.cancel(id)).rejects.toMatchObject({ code: 'conflict' });
  });

  it('through HTTP (native stop and Celery revoke): each run ends REVOKED', async () => {
    const runs: string[] = [];
    const { url } = await serverWith([makeFlaky(runs)], { plugins: (yard) => [(app) => celeryRoutes(app, yard)] });
    const launch = async () => (await http(`${url}/api/tasks`, { body: { task_type: 'gaps.flaky' } })).body.task_id as string;
    const stateOf = async (id: string) => (await http(`${url}/api/tasks/${id}`)).body.state as string;
    const viaStop = await launch();
    const viaCelery = await launch();
    await untilRetry(() => stateOf(viaStop));
    await untilRetry(() => stateOf(viaCelery));

    const stop = await http(`${url}/api/tasks/${viaStop}/stop`, { body: { hard: false, reason: 'stop it' } });
    expect(CANCEL_ACCEPTED, JSON.stringify(stop.body)).toContain(stop.status);
    const revoke = await http(`${url}/api/celery/tasks/${viaCelery}`, { method: 'DELETE' });
    expect(revoke.status, JSON.stringify(revoke.body)).toBe(200);

    for (const id of [viaStop, viaCelery]) {
      await eventually(async () => (await stateOf(id)) === 'REVOKED', 2000);
      expect((await http(`${url}/api/celery/tasks/${id}`)).body.status).toBe('REVOKED');
    }
    expect(runs.sort()).toEqual([viaStop, viaCelery].sort());
  });
});

// ---- cancel of a STARTED run no engine holds (taskyard.ts cancel(): the ledger revoke) ------

describe('cancel of a STARTED run whose process is gone', () => {
  const slow = defineTask({ name: 'gaps.slow', run: () => new Promise(() => {}) });

  /**
   * A yard that does not execute (an API-only process) over a ledger where another process's
   * worker claimed a run and died: the row stays STARTED, held by no engine.
   */
  async function orphanedRun(yard: Taskyard, dir: string): Promise<string> {
    const [record] = await yard.launch([{ name: 'gaps.slow' }]);
    const gone = testStore(dir); // the same ledger, opened by another worker
    await gone.migrate();
    const claimed = await gone.claim({ limit: 1, now: Date.now(), worker: 'local@gone-host:99999' });
    await gone.close();
    expect(claimed.map((r) => r.id)).toEqual([record!.id]);
    expect((await yard.get(record!.id)).state).toBe('STARTED');
    return record!.id;
  }

  it('through the library: the run ends REVOKED', async () => {
    const dir = newDir();
    const { yard } = await yardWith([slow], { dir, execute: false });
    const id = await orphanedRun(yard, dir);
    await yard.cancel(id, { reason: 'owner is gone' });
    await eventually(async () => (await yard.get(id)).state === 'REVOKED', 2000);
    const after = await yard.get(id);
    expect(after.revokeReason).toBe('owner is gone');
    expect(after.finishedAt).not.toBeNull();
  });

  it('through HTTP, soft and hard: the run ends REVOKED', async () => {
    for (const hard of [false, true]) {
      const dir = newDir();
      const { yard, url } = await serverWith([slow], { dir, execute: false });
      const id = await orphanedRun(yard, dir);
      const res = await http(`${url}/api/tasks/${id}/stop`, { body: { hard } });
      expect(CANCEL_ACCEPTED, JSON.stringify(res.body)).toContain(res.status);
      await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'REVOKED', 2000);
    }
  });
});

// ---- waking up for the next eta (local engine armWakeTimer) ---------------------------------

describe('wake-up for the next eta with a slow safety poll', () => {
  /** The safety poll never fires within a test: only the eta wake-up can start these runs. */
  const SLOW_POLL = { pollIntervalMs: 60_000 };
  /** How late after its eta a run may start: timer and commit latency on a busy machine. */
  const MARGIN_MS = 250;

  function recorder() {
    const starts = new Map<string, number[]>();
    const record = (id: string) => starts.set(id, [...(starts.get(id) ?? []), Date.now()]);
    return { starts, record };
  }

  it('starts delayed runs at their eta, the nearer one first, though it was launched last', async () => {
    const { starts, record } = recorder();
    const job = defineTask({ name: 'gaps.at', run: (_p, ctx) => void record(ctx.taskId) });
    const { yard } = await yardWith([job], { engineOptions: SLOW_POLL });
    const later = await yard.submit('gaps.at', {}, { countdown: 0.6 });
    const sooner = await yard.submit('gaps.at', {}, { countdown: 0.3 });
    for (const id of [sooner, later]) {
      const done = await yard.waitFor(id, 3000);
      const late = starts.get(id)![0]! - done.runAt;
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(MARGIN_MS);
    }
  });

  it('starts a retry when its backoff ends', async () => {
    const { starts, record } = recorder();
    const etas: number[] = [];
    const flaky = defineTask({
      name: 'gaps.retry_once',
      retry: { attempts: 2, backoff: 'fixed', delay: 300, jitter: 0 },
      run: (_p, ctx) => {
        record(ctx.taskId);
        if (ctx.attempt === 1) throw new Error('once');
      },
    });
    const { yard } = await yardWith([flaky], { engineOptions: SLOW_POLL });
    // Read as soon as the retry is committed, 300 ms before the run is due again.
    yard.on('retry', (e) => void yard.get(e.taskId).then((r) => etas.push(r.runAt)));
    const id = await yard.submit('gaps.retry_once');
    expect((await yard.waitFor(id, 3000)).state).toBe('SUCCESS');
    const [first, second] = starts.get(id)!;
    expect(etas).toHaveLength(1);
    expect(etas[0]! - first!).toBeGreaterThanOrEqual(300);
    expect(second! - etas[0]!).toBeGreaterThanOrEqual(0);
    expect(second! - etas[0]!).toBeLessThan(MARGIN_MS);
  });

  it('starts a run that was already waiting in the ledger when the engine started', async () => {
    const { starts, record } = recorder();
    const job = defineTask({ name: 'gaps.at', run: (_p, ctx) => void record(ctx.taskId) });
    const dir = newDir();
    const writer = await startYard({ tasks: [job], dir, execute: false });
    const id = await writer.yard.submit('gaps.at', {}, { countdown: 0.5 });
    await writer.yard.close();
    const { yard } = await yardWith([job], { dir, engineOptions: SLOW_POLL });
    const done = await yard.waitFor(id, 3000);
    expect(starts.get(id)![0]! - done.runAt).toBeLessThan(MARGIN_MS);
  });
});

// ---- fixed backoff (core/retry) -------------------------------------------------------------

describe('fixed retry backoff', () => {
  const policy = (overrides: Partial<RetryPolicy>): RetryPolicy => ({ ...DEFAULT_RETRY, ...overrides });

  it('gives the same delay after every failed attempt, capped and jittered like any other', () => {
    const fixed = policy({ backoff: 'fixed', delay: 1000, jitter: 0 });
    expect([1, 2, 3, 4, 10].map((attempt) => retryDelayMs(fixed, attempt))).toEqual([1000, 1000, 1000, 1000, 1000]);
    const exponential = policy({ backoff: 'exponential', delay: 1000, jitter: 0 });
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(exponential, attempt))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(policy({ backoff: 'fixed', delay: 1000, maxDelay: 400, jitter: 0 }), 3)).toBe(400);
    // Jitter takes up to `jitter` of the delay off: random() = 1 is the most.
    expect(retryDelayMs(policy({ backoff: 'fixed', delay: 1000, jitter: 0.25 }), 5, () => 1)).toBe(750);
    expect(retryDelayMs(policy({ backoff: 'fixed', delay: 1000, jitter: 0.25 }), 5, () => 0)).toBe(1000);
  });

  it('waits that delay between the runs of a real task', async () => {
    const starts: number[] = [];
    const delays: number[] = [];
    const flaky = defineTask({
      name: 'gaps.fixed',
      retry: { attempts: 4, backoff: 'fixed', delay: 150, jitter: 0 },
      run: () => {
        starts.push(Date.now());
        throw new Error('again');
      },
    });
    const { yard } = await yardWith([flaky]);
    yard.on('retry', (e) => delays.push(e.data!.delay_ms as number));
    const done = await yard.waitFor(await yard.submit('gaps.fixed'), 5000);
    expect(done).toMatchObject({ state: 'FAILURE', attempt: 4 });
    expect(delays).toEqual([150, 150, 150]);
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    expect(gaps).toHaveLength(3);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(148);
      expect(gap).toBeLessThan(150 + 150); // an exponential second gap would be 300
    }
  });
});
