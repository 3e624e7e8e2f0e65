/**
 * One contract, two stores: every test here runs on a fresh SQLite file and on a fresh PostgreSQL
 * schema, so the stores cannot drift apart.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../src/core/events.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import type { TaskState } from '../src/core/states.js';
import type { TaskChange, TaskStore } from '../src/store/types.js';
import { ledgerHarnesses, type Ledger } from './ledgers.js';

const harnesses = ledgerHarnesses;

function record(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = overrides.createdAt ?? Date.now() - 1000;
  return {
    id: uuidv7(),
    name: 'demo.job',
    category: 'demo',
    displayName: 'Demo job',
    state: 'PENDING',
    progress: 0,
    progressMessage: null,
    tenantId: '73',
    params: { company_id: '73' },
    result: null,
    error: null,
    traceback: null,
    meta: null,
    attempt: 0,
    maxAttempts: 3,
    priority: 0,
    queue: 'default',
    route: 'light',
    engine: 'local',
    worker: null,
    idempotencyKey: null,
    runAt: now,
    cancelRequested: null,
    revokeReason: null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    updatedAt: now,
    ...overrides,
  };
}

const succeed = (id: string, result: unknown = 'ok'): TaskChange => ({
  id, to: 'SUCCESS', from: ['STARTED'], patch: { result, finishedAt: Date.now(), progress: 100 }, event: 'succeeded',
});
const fail = (id: string, error = 'boom'): TaskChange => ({
  id, to: 'FAILURE', from: ['STARTED'], patch: { error, finishedAt: Date.now() }, event: 'failed',
});
const progress = (id: string, percent: number, message: string): TaskChange => ({
  id, to: 'STARTED', from: ['STARTED'], patch: { progress: percent, progressMessage: message }, event: 'progress', data: { progress: percent },
});
const revoke = (id: string, from: TaskState[] = ['PENDING', 'RETRY', 'STARTED']): TaskChange => ({
  id, to: 'REVOKED', from, patch: { finishedAt: Date.now(), revokeReason: 'stop' }, event: 'revoked',
});

/** Every finished run that ended before `before`, whatever its state. */
async function pruneAll(store: TaskStore, before: number, limit: number): Promise<number> {
  let deleted = 0;
  for (const state of ['SUCCESS', 'FAILURE', 'REVOKED'] as const) deleted += await store.prune({ state, before }, limit);
  return deleted;
}

const claimAll = (store: TaskStore, limit = 100, worker = 'w1') => store.claim({ limit, now: Date.now(), worker });

describe.each(harnesses)('%s store', (_kind, makeLedger) => {
  let ledger: Ledger;
  let store: TaskStore;
  let committed: TaskEvent[];

  beforeEach(async () => {
    ledger = makeLedger();
    committed = [];
    store = await ledger.open((events) => committed.push(...events));
  });
  afterEach(async () => {
    await ledger.dispose();
  });

  /** Inserts and claims runs, returning them STARTED. */
  async function started(...records: TaskRecord[]): Promise<TaskRecord[]> {
    await store.insert(records);
    const claimed = await store.claim({ limit: records.length, now: Date.now(), worker: 'w1', names: [...new Set(records.map((r) => r.name))] });
    expect(claimed).toHaveLength(records.length);
    return claimed;
  }

  describe('insert', () => {
    it('writes every field and one enqueued event per record', async () => {
      const plain = record({ params: { company_id: '73', months: [1, 2], nested: { 'ü': 'ñ' } }, meta: { source: 'test' } });
      const delayed = record({ runAt: Date.now() + 60_000, priority: 5, queue: 'slow', tenantId: null });
      const events = await store.insert([plain, delayed]);
      expect(events.map((e) => [e.taskId, e.type, e.state])).toEqual([
        [plain.id, 'enqueued', 'PENDING'],
        [delayed.id, 'enqueued', 'PENDING'],
      ]);
      expect(events[1]!.seq).toBeGreaterThan(events[0]!.seq);
      expect(events[0]!.data).toBeNull();
      expect(events[1]!.data).toEqual({ eta: new Date(delayed.runAt).toISOString() });
      expect(await store.get(plain.id, '*')).toEqual(plain);
      expect(await store.get(delayed.id, '*')).toEqual(delayed);
    });

    it('keeps a record that is not fresh (any state and fields) exactly as given', async () => {
      const finished = record({
        state: 'FAILURE', attempt: 2, worker: 'w9', error: 'nope', traceback: 'Error: nope\n  at x', result: [1, 'two'],
        startedAt: Date.now() - 500, finishedAt: Date.now() - 100, progress: 40, progressMessage: 'half way',
        cancelRequested: 'soft', revokeReason: 'r',
      });
      const [event] = await store.insert([finished]);
      expect(event).toMatchObject({ type: 'enqueued', state: 'FAILURE' });
      expect(await store.get(finished.id, '*')).toEqual(finished);
    });

    it('skips an id that exists, and writes nothing for an empty batch', async () => {
      const first = record();
      await store.insert([first]);
      expect(await store.insert([{ ...first, name: 'other' }])).toEqual([]);
      expect((await store.get(first.id, '*'))!.name).toBe('demo.job');
      expect(await store.insert([])).toEqual([]);
    });

    it('rejects params that JSON cannot hold, writing none of the batch', async () => {
      const good = record();
      const bad = record({ params: { n: 10n } });
      await expect(store.insert([good, bad])).rejects.toThrow();
      expect(await store.get(good.id, '*')).toBeNull();
    });
  });

  describe('idempotency', () => {
    it('a key names one run per tenant: a second insert is skipped, and the key finds the first', async () => {
      const first = record({ idempotencyKey: 'sync-2024' });
      const again = record({ idempotencyKey: 'sync-2024' });
      const other = record({ idempotencyKey: 'sync-2024', tenantId: '4' });
      const anonymous = record({ idempotencyKey: 'sync-2024', tenantId: null });
      expect(await store.insert([first])).toHaveLength(1);
      expect(await store.insert([again])).toEqual([]);
      expect(await store.insert([other, anonymous])).toHaveLength(2);
      expect(await store.get(again.id, '*')).toBeNull();
      expect((await store.findByIdempotencyKey('73', 'sync-2024'))!.id).toBe(first.id);
      expect((await store.findByIdempotencyKey('4', 'sync-2024'))!.id).toBe(other.id);
      expect((await store.findByIdempotencyKey(null, 'sync-2024'))!.id).toBe(anonymous.id);
      expect(await store.findByIdempotencyKey('5', 'sync-2024')).toBeNull();
      expect(await store.findByIdempotencyKey('73', 'other-key')).toBeNull();
    });

    it('the same key twice in one batch, or from two processes at once, makes one run', async () => {
      const [a, b] = [record({ idempotencyKey: 'k1' }), record({ idempotencyKey: 'k1' })];
      expect((await store.insert([a, b])).map((e) => e.taskId)).toEqual([a.id]);

      const second = await ledger.open();
      const racers = Array.from({ length: 10 }, (_, i) => record({ idempotencyKey: 'k2', params: { i } }));
      const results = await Promise.all(racers.map((r, i) => (i % 2 ? second : store).insert([r])));
      expect(results.flat()).toHaveLength(1);
      const winner = await store.findByIdempotencyKey('73', 'k2');
      expect(results.flat()[0]!.taskId).toBe(winner!.id);
    });
  });

  describe('apply (compare-and-set)', () => {
    it('applies legal transitions and refuses illegal ones, leaving the run as it was', async () => {
      const pending = record();
      await store.insert([pending]);
      // PENDING cannot end SUCCESS or go to RETRY; an unknown id is refused too.
      const refused = await store.apply([
        { id: pending.id, to: 'SUCCESS', patch: { result: 'x' }, event: 'succeeded' },
        { id: pending.id, to: 'RETRY', patch: {}, event: 'retry' },
        { id: uuidv7(), to: 'REVOKED', patch: {}, event: 'revoked' },
      ]);
      expect(refused).toEqual([null, null, null]);
      expect(await store.get(pending.id, '*')).toEqual(pending);

      const [event] = await store.apply([revoke(pending.id)]);
      expect(event).toMatchObject({ taskId: pending.id, type: 'revoked', state: 'REVOKED', tenantId: '73', name: 'demo.job', category: 'demo' });
      expect(await store.get(pending.id, '*')).toMatchObject({ state: 'REVOKED', revokeReason: 'stop' });
    });

    it('honours `from`: a legal transition from a state not listed is refused', async () => {
      const run = record();
      await store.insert([run]);
      expect(await store.apply([revoke(run.id, ['STARTED'])])).toEqual([null]);
      expect((await store.get(run.id, '*'))!.state).toBe('PENDING');
      expect(await store.apply([revoke(run.id, ['PENDING'])])).toEqual([expect.objectContaining({ state: 'REVOKED' })]);
    });

    it('a progress change with `to` equal to the state updates fields without a transition', async () => {
      const [run] = await started(record());
      const before = await store.stats('*', Date.now());
      const [event] = await store.apply([progress(run!.id, 40, 'Compras')]);
      expect(event).toMatchObject({ type: 'progress', state: 'STARTED', data: { progress: 40 } });
      expect(await store.get(run!.id, '*')).toMatchObject({ state: 'STARTED', progress: 40, progressMessage: 'Compras' });
      expect((await store.stats('*', Date.now())).byState).toEqual(before.byState);
    });

    it('a finished run never moves back: late and duplicate outcomes are refused', async () => {
      const [run] = await started(record());
      expect(await store.apply([succeed(run!.id, { rows: 3 })])).toEqual([expect.objectContaining({ type: 'succeeded' })]);
      const late = await store.apply([
        fail(run!.id),
        succeed(run!.id, 'again'),
        progress(run!.id, 10, 'late'),
        { id: run!.id, to: 'RETRY', patch: { runAt: Date.now() }, event: 'retry' },
        { id: run!.id, to: 'STARTED', patch: {}, event: 'started' },
        revoke(run!.id),
      ]);
      expect(late).toEqual([null, null, null, null, null, null]);
      expect(await store.get(run!.id, '*')).toMatchObject({ state: 'SUCCESS', result: { rows: 3 }, progress: 100, error: null });
    });

    it('changes in one batch apply in order, each seeing the state the previous one left', async () => {
      const [run] = await started(record());
      const events = await store.apply([progress(run!.id, 50, 'half'), succeed(run!.id), fail(run!.id), progress(run!.id, 60, 'late')]);
      expect(events.map((e) => e?.type ?? null)).toEqual(['progress', 'succeeded', null, null]);
      expect(await store.get(run!.id, '*')).toMatchObject({ state: 'SUCCESS', progress: 100, progressMessage: 'half' });
      expect((await store.events({ afterSeq: 0, limit: 10, taskId: run!.id }, '*')).map((e) => e.type)).toEqual(['enqueued', 'started', 'progress', 'succeeded']);
    });

    it('concurrent duplicate outcomes from two processes: exactly one applies', async () => {
      const second = await ledger.open();
      const runs = await started(...Array.from({ length: 20 }, () => record()));
      const outcomes = await Promise.all(
        runs.flatMap((run) => [store.apply([succeed(run.id, 'first')]), second.apply([fail(run.id)]), second.apply([succeed(run.id, 'second')])]),
      );
      for (const [i, run] of runs.entries()) {
        const [a, b, c] = outcomes.slice(i * 3, i * 3 + 3).map(([event]) => event);
        const winners = [a, b, c].filter((e) => e !== null);
        expect(winners).toHaveLength(1);
        const final = (await store.get(run.id, '*'))!;
        expect(final.state).toBe(winners[0]!.state);
        const ends = (await store.events({ afterSeq: 0, limit: 10, taskId: run.id }, '*')).filter((e) => e.state !== 'STARTED' && e.state !== 'PENDING');
        expect(ends).toHaveLength(1);
      }
      const stats = await store.stats('*', Date.now());
      expect(stats.byState.SUCCESS + stats.byState.FAILURE).toBe(20);
      expect(stats.byState.STARTED).toBe(0);
    });

    it('rejects a bad patch before writing anything of its batch', async () => {
      const [run] = await started(record());
      await expect(store.apply([progress(run!.id, 10, 'a'), { id: run!.id, to: 'STARTED', patch: { state: 'SUCCESS' } as never, event: 'progress' }])).rejects.toThrow();
      await expect(store.apply([{ id: run!.id, to: 'STARTED', patch: { attempt: null } as never, event: 'progress' }])).rejects.toThrow(/null/);
      expect(await store.get(run!.id, '*')).toMatchObject({ progress: 0, progressMessage: null });
    });

    it('one bad write in a group commit fails alone; the writes beside it commit', async () => {
      const [a, b] = await started(record(), record());
      const results = await Promise.allSettled([
        store.apply([progress(a!.id, 10, 'fine')]),
        store.insert([record({ id: a!.id })]), // a taken id is skipped, not an error
        store.apply([{ id: b!.id, to: 'STARTED', patch: { progress: Number.NaN }, event: 'progress' }]),
        store.apply([succeed(b!.id)]),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect(await store.get(a!.id, '*')).toMatchObject({ progress: 10, progressMessage: 'fine' });
      expect((await store.get(b!.id, '*'))!.state).toBe('SUCCESS');
    });

    it('after a cancel request a running run may only end REVOKED', async () => {
      const [run] = await started(record());
      const request: TaskChange = { id: run!.id, to: 'STARTED', from: ['STARTED'], patch: { cancelRequested: 'soft', revokeReason: 'asked' }, event: 'progress' };
      expect(await store.apply([request])).toEqual([expect.objectContaining({ state: 'STARTED' })]);
      expect(await store.apply([succeed(run!.id)])).toEqual([null]);
      expect(await store.apply([{ id: run!.id, to: 'RETRY', from: ['STARTED'], patch: {}, event: 'retry' }])).toEqual([null]);
      expect(await store.apply([revoke(run!.id, ['STARTED'])])).toEqual([expect.objectContaining({ state: 'REVOKED' })]);
    });
  });

  describe('claim', () => {
    it('takes due runs, highest priority first, then earliest run_at, then id; sets the run up to start', async () => {
      const now = Date.now();
      const low = record({ priority: 0, runAt: now - 5000 });
      const highLate = record({ priority: 9, runAt: now - 1000 });
      const highEarly = record({ priority: 9, runAt: now - 2000 });
      const future = record({ priority: 10, runAt: now + 60_000 });
      const [tieA, tieB] = [record({ priority: 3, runAt: now - 3000 }), record({ priority: 3, runAt: now - 3000 })];
      await store.insert([low, highLate, highEarly, future, tieB, tieA]);
      const claimed = await store.claim({ limit: 4, now, worker: 'w7' });
      expect(claimed.map((r) => r.id)).toEqual([highEarly.id, highLate.id, tieA.id, tieB.id]);
      expect(claimed[0]).toMatchObject({ state: 'STARTED', attempt: 1, worker: 'w7', startedAt: now, updatedAt: now, progress: 0, progressMessage: null });
      expect(await store.get(highEarly.id, '*')).toEqual(claimed[0]);
      const rest = await store.claim({ limit: 10, now, worker: 'w7' });
      expect(rest.map((r) => r.id)).toEqual([low.id]); // the future run waits
      const startedEvents = committed.filter((e) => e.type === 'started');
      expect(startedEvents.map((e) => e.taskId)).toEqual([highEarly.id, highLate.id, tieA.id, tieB.id, low.id]);
      expect(startedEvents[0]!.data).toEqual({ attempt: 1, worker: 'w7' });
    });

    it('claims RETRY runs again, bumping the attempt and resetting progress', async () => {
      const [run] = await started(record());
      await store.apply([progress(run!.id, 70, 'deep')]);
      await store.apply([{ id: run!.id, to: 'RETRY', from: ['STARTED'], patch: { runAt: Date.now() - 1, error: 'try again' }, event: 'retry' }]);
      const [again] = await claimAll(store, 10, 'w2');
      expect(again).toMatchObject({ id: run!.id, state: 'STARTED', attempt: 2, worker: 'w2', progress: 0, progressMessage: null });
    });

    it('filters by queue and name, and leaves out excluded ones', async () => {
      const a = record({ queue: 'fast', name: 'x.a' });
      const b = record({ queue: 'slow', name: 'x.b' });
      const c = record({ queue: 'fast', name: 'x.c' });
      const d = record({ queue: 'other', name: 'x.d' });
      await store.insert([a, b, c, d]);
      const now = Date.now();
      expect((await store.claim({ limit: 10, now, worker: 'w', queues: ['fast'], names: ['x.c'] })).map((r) => r.id)).toEqual([c.id]);
      expect((await store.claim({ limit: 10, now, worker: 'w', excludeQueues: ['slow'], excludeNames: ['x.d'] })).map((r) => r.id)).toEqual([a.id]);
      expect((await store.claim({ limit: 10, now, worker: 'w', names: ['x.b', 'x.d'], queues: ['slow', 'other'] })).map((r) => r.id).sort()).toEqual([b.id, d.id].sort());
      expect(await store.claim({ limit: 10, now, worker: 'w' })).toEqual([]);
    });

    it('two processes claiming at once never take the same run', async () => {
      const second = await ledger.open();
      await store.insert(Array.from({ length: 200 }, (_, i) => record({ priority: i % 4 })));
      const claims = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? second : store).claim({ limit: 15, now: Date.now(), worker: `w${i % 2}` })),
      );
      const ids = claims.flat().map((r) => r.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(200);
      expect((await store.stats('*', Date.now())).byState.STARTED).toBe(200);
      expect((await store.findStarted('w1')).length + (await store.findStarted('w0')).length).toBe(200);
    });

    it('nextRunAt is the earliest waiting run; findStarted filters by worker', async () => {
      expect(await store.nextRunAt()).toBeNull();
      const soon = record({ runAt: Date.now() + 5000 });
      await store.insert([record({ runAt: Date.now() + 9000 }), soon]);
      expect(await store.nextRunAt()).toBe(soon.runAt);
      await started(record({ name: 'y.one' }));
      expect((await store.findStarted()).map((r) => r.name)).toEqual(['y.one']);
      expect(await store.findStarted('nobody')).toEqual([]);
    });
  });

  describe('start (runs delivered by an external engine)', () => {
    it('starts the given waiting, due runs once, whatever else is waiting; returns only those it started', async () => {
      const now = Date.now();
      const [due, other, future] = [record(), record(), record({ runAt: now + 60_000 })];
      await store.insert([due, other, future]);
      const got = await store.start([due.id, future.id, 'no-such-id'], 'bull-1', now);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ id: due.id, state: 'STARTED', attempt: 1, worker: 'bull-1', startedAt: now, progress: 0 });
      expect(await store.get(due.id, '*')).toEqual(got[0]);
      expect((await store.get(other.id, '*'))!.state).toBe('PENDING');
      expect((await store.get(future.id, '*'))!.state).toBe('PENDING');
      expect(committed.filter((e) => e.type === 'started').map((e) => [e.taskId, e.data])).toEqual([[due.id, { attempt: 1, worker: 'bull-1' }]]);
      // A second delivery of the same run (a duplicate job) starts nothing.
      expect(await store.start([due.id], 'bull-2', Date.now())).toEqual([]);
      expect((await store.get(due.id, '*'))!.worker).toBe('bull-1');
      expect((await store.stats('*', Date.now())).byState).toMatchObject({ STARTED: 1, PENDING: 2 });
    });

    it('never starts a revoked or finished run, and starts a RETRY run again with the next attempt', async () => {
      const [revoked, retried] = [record(), record()];
      await store.insert([revoked, retried]);
      await store.apply([revoke(revoked.id)]);
      expect(await store.start([revoked.id], 'w', Date.now())).toEqual([]);
      expect((await store.get(revoked.id, '*'))!.state).toBe('REVOKED');
      const [first] = await store.start([retried.id], 'w', Date.now());
      expect(first!.attempt).toBe(1);
      await store.apply([{ id: retried.id, to: 'RETRY', from: ['STARTED'], patch: { runAt: Date.now() + 60_000 }, event: 'retry' }]);
      expect(await store.start([retried.id], 'w', Date.now())).toEqual([]); // not due yet
      const [second] = await store.start([retried.id], 'w2', Date.now() + 61_000);
      expect(second).toMatchObject({ state: 'STARTED', attempt: 2, worker: 'w2' });
      await store.apply([succeed(retried.id)]);
      expect(await store.start([retried.id], 'w3', Date.now() + 120_000)).toEqual([]);
    });

    it('two processes starting the same runs at once start each exactly once', async () => {
      const second = await ledger.open();
      const records = Array.from({ length: 60 }, () => record());
      await store.insert(records);
      const ids = records.map((r) => r.id);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? second : store).start(i % 3 ? ids : [...ids].reverse(), `w${i}`, Date.now())),
      );
      const startedIds = results.flat().map((r) => r.id);
      expect(startedIds.sort()).toEqual([...ids].sort());
      expect((await store.stats('*', Date.now())).byState.STARTED).toBe(60);
    });

    it('claim can be limited to runs of some engines', async () => {
      const local = record({ engine: 'local' });
      const remote = record({ engine: 'bullmq' });
      await store.insert([local, remote]);
      expect((await store.claim({ limit: 10, now: Date.now(), worker: 'w', engines: ['local'] })).map((r) => r.id)).toEqual([local.id]);
      expect(await store.claim({ limit: 10, now: Date.now(), worker: 'w', engines: ['local'] })).toEqual([]);
    });
  });

  describe('reads', () => {
    it('list filters by name, category, tenant, state, time and text, newest first, with a cursor', async () => {
      const t0 = Date.now() - 10_000;
      const runs = Array.from({ length: 7 }, (_, i) =>
        record({ id: uuidv7(t0 + i * 1000), createdAt: t0 + i * 1000, name: i % 2 ? 'odd.job' : 'even.job', category: i < 4 ? 'early' : 'late', tenantId: i % 3 ? '73' : '4' }),
      );
      await store.insert(runs);
      await store.apply([revoke(runs[6]!.id)]);
      await store.apply([{ id: runs[5]!.id, to: 'REVOKED', patch: { error: 'Company 100%_done not found' }, event: 'revoked' }]);
      const ids = async (filter: Parameters<TaskStore['list']>[0], scope: Parameters<TaskStore['list']>[1] = '*') =>
        (await store.list(filter, scope)).tasks.map((t) => runs.findIndex((r) => r.id === t.id));
      expect(await ids({ limit: 10 })).toEqual([6, 5, 4, 3, 2, 1, 0]);
      expect(await ids({ limit: 10, names: ['odd.job'] })).toEqual([5, 3, 1]);
      expect(await ids({ limit: 10, categories: ['late'] })).toEqual([6, 5, 4]);
      expect(await ids({ limit: 10, tenantId: '4' })).toEqual([6, 3, 0]);
      expect(await ids({ limit: 10, states: ['REVOKED'] })).toEqual([6, 5]);
      expect(await ids({ limit: 10, since: t0 + 2000, until: t0 + 5000 })).toEqual([4, 3, 2]);
      expect(await ids({ limit: 10, search: '100%_' })).toEqual([5]);
      expect(await ids({ limit: 10, search: '0%_' })).toEqual([5]);
      expect(await ids({ limit: 10, search: '%' })).toEqual([5]); // a literal %, not a wildcard
      expect(await ids({ limit: 10, search: runs[2]!.id })).toEqual([2]);
      expect(await ids({ limit: 10, search: '"company_id":"73"' })).toEqual([6, 5, 4, 3, 2, 1, 0]);
      expect(await ids({ limit: 10 }, ['73'])).toEqual([5, 4, 2, 1]);
      expect(await ids({ limit: 10 }, [])).toEqual([]);

      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 5; page++) {
        const result = await store.list({ limit: 3, cursor }, '*');
        seen.push(...result.tasks.map((t) => t.id));
        if (!result.nextCursor) break;
        cursor = result.nextCursor;
      }
      expect(seen).toEqual([...runs].reverse().map((r) => r.id));
    });

    it('get and events respect the tenant scope; getMany keeps the order asked', async () => {
      const mine = record({ tenantId: '73' });
      const theirs = record({ tenantId: '4' });
      const nobody = record({ tenantId: null });
      await store.insert([mine, theirs, nobody]);
      expect(await store.get(theirs.id, ['73'])).toBeNull();
      expect(await store.get(nobody.id, ['73'])).toBeNull();
      expect((await store.get(nobody.id, '*'))!.id).toBe(nobody.id);
      expect((await store.get(mine.id, ['73', '5']))!.id).toBe(mine.id);
      expect((await store.getMany([theirs.id, uuidv7(), mine.id])).map((r) => r.id)).toEqual([theirs.id, mine.id]);
      expect((await store.events({ afterSeq: 0, limit: 10 }, ['73'])).map((e) => e.taskId)).toEqual([mine.id]);
      expect(await store.events({ afterSeq: 0, limit: 10 }, [])).toEqual([]);
      expect(await store.events({ afterSeq: 0, limit: 10, taskId: theirs.id }, ['73'])).toEqual([]);
    });

    it('stats: counts by state, category and name, durations, throughput and queue depth, per scope', async () => {
      const now = Date.now();
      await store.insert([
        record({ name: 'a.one', category: 'a', tenantId: '73' }),
        record({ name: 'a.one', category: 'a', tenantId: '4', queue: 'slow' }),
        record({ name: 'b.two', category: 'b', tenantId: '73', runAt: now + 60_000 }),
        record({ name: 'b.two', category: 'b', tenantId: '73', state: 'SUCCESS', startedAt: now - 4000, finishedAt: now - 1000 }),
        record({ name: 'b.two', category: 'b', tenantId: '73', state: 'FAILURE', startedAt: now - 7_200_000, finishedAt: now - 7_000_000 }),
        record({ name: 'a.one', category: 'a', tenantId: '4', state: 'SUCCESS', startedAt: now - 300_000, finishedAt: now - 120_000 }),
        record({ name: 'a.one', category: 'a', tenantId: '73', state: 'RETRY', attempt: 1 }),
      ]);
      const all = await store.stats('*', now);
      expect(all.byState).toEqual({ PENDING: 3, STARTED: 0, RETRY: 1, SUCCESS: 2, FAILURE: 1, REVOKED: 0 });
      expect(all.byCategory.a).toMatchObject({ PENDING: 2, RETRY: 1, SUCCESS: 1 });
      expect(all.byName['b.two']).toMatchObject({ PENDING: 1, SUCCESS: 1, FAILURE: 1 });
      expect(all.durations).toEqual({ p50: 180_000, p95: 180_000, samples: 2 });
      expect(all.throughput).toEqual({ lastMinute: 1, lastHour: 2, perSecond: 0.02 });
      expect(all.queueDepth).toEqual({ pending: 2, delayed: 1, retry: 1, byQueue: { default: 3, slow: 1 } });

      const scoped = await store.stats(['4'], now);
      expect(scoped.byState).toEqual({ PENDING: 1, STARTED: 0, RETRY: 0, SUCCESS: 1, FAILURE: 0, REVOKED: 0 });
      expect(scoped.durations.samples).toBe(1);
      expect(scoped.queueDepth).toEqual({ pending: 1, delayed: 0, retry: 0, byQueue: { slow: 1 } });
      expect((await store.stats([], now)).byState.PENDING).toBe(0);
    });

    it('counts follow every transition', async () => {
      const runs = await started(record(), record(), record());
      await store.apply([succeed(runs[0]!.id), fail(runs[1]!.id), revoke(runs[2]!.id)]);
      await store.insert([record()]);
      expect((await store.stats('*', Date.now())).byState).toEqual({ PENDING: 1, STARTED: 0, RETRY: 0, SUCCESS: 1, FAILURE: 1, REVOKED: 1 });
    });
  });

  describe('events', () => {
    it('are read in seq order, after a cursor, filtered by tenant, name, category and task', async () => {
      const a = record({ name: 'n.a', category: 'ca', tenantId: '73' });
      const b = record({ name: 'n.b', category: 'cb', tenantId: '4' });
      await store.insert([a]);
      await store.insert([b]);
      const claimed = await claimAll(store);
      await store.apply(claimed.map((r) => progress(r.id, 50, 'half')));
      await store.apply([succeed(a.id), fail(b.id)]);
      const all = await store.events({ afterSeq: 0, limit: 100 }, '*');
      expect(all).toHaveLength(8);
      expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((x, y) => x - y));
      expect(new Set(all.map((e) => e.seq)).size).toBe(8);
      expect(all).toEqual(committed);
      const third = all[2]!.seq;
      expect((await store.events({ afterSeq: third, limit: 100 }, '*')).map((e) => e.seq)).toEqual(all.slice(3).map((e) => e.seq));
      expect(await store.events({ afterSeq: 0, limit: 3 }, '*')).toEqual(all.slice(0, 3));
      expect((await store.events({ afterSeq: 0, limit: 100, tenantId: '4' }, '*')).every((e) => e.taskId === b.id)).toBe(true);
      expect((await store.events({ afterSeq: 0, limit: 100, name: 'n.a' }, '*')).map((e) => e.type)).toEqual(['enqueued', 'started', 'progress', 'succeeded']);
      expect((await store.events({ afterSeq: 0, limit: 100, category: 'cb' }, '*')).map((e) => e.type)).toEqual(['enqueued', 'started', 'progress', 'failed']);
      const ofB = await store.events({ afterSeq: 0, limit: 100, taskId: b.id }, '*');
      expect(ofB).toEqual(all.filter((e) => e.taskId === b.id));
      expect(await store.events({ afterSeq: ofB[1]!.seq, limit: 1, taskId: b.id }, '*')).toEqual([ofB[2]]);
      expect(await store.events({ afterSeq: 0, limit: 100, taskId: b.id, name: 'n.a' }, '*')).toEqual([]);
    });

    it('onCommit gets every committed event once, in seq order, across concurrent writes', async () => {
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) writes.push(store.insert([record()]));
      await Promise.all(writes);
      const claimed = await claimAll(store);
      await Promise.all(claimed.map((r, i) => store.apply([i % 2 ? succeed(r.id) : progress(r.id, i, 'p')])));
      const seqs = committed.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(committed).toEqual(await store.events({ afterSeq: 0, limit: 1000 }, '*'));
      expect(committed).toHaveLength(30 + 30 + 30);
    });
  });

  describe('peers, leadership and cursors', () => {
    it('lastSeq is the newest committed seq, and stays put after the newest events are pruned', async () => {
      expect(await store.lastSeq()).toBe(0);
      const [run] = await started(record());
      const [done] = await store.apply([succeed(run!.id)]);
      expect(await store.lastSeq()).toBe(done!.seq);
      await pruneAll(store, Date.now() + 1000, 10);
      expect(await store.lastSeq()).toBe(done!.seq);
    });

    it('a change for a worker applies only while that worker owns the run', async () => {
      const [run] = await started(record());
      expect(await store.apply([{ ...fail(run!.id), worker: 'someone-else' }])).toEqual([null]);
      expect(await store.apply([{ ...fail(run!.id), worker: 'w1' }])).toEqual([expect.objectContaining({ state: 'FAILURE' })]);
    });

    it('heartbeats write and renew worker rows; removeWorker drops one', async () => {
      const row = { id: 'p1', host: 'h', pid: 42, engine: 'local', concurrency: 4, startedAt: 1000, heartbeatAt: 1000, expiresAt: 31_000 };
      await store.heartbeat(row);
      await store.heartbeat({ ...row, id: 'p2', startedAt: 2000 });
      await store.heartbeat({ ...row, heartbeatAt: 5000, expiresAt: 35_000, concurrency: 8 });
      expect(await store.workers()).toEqual([{ ...row, heartbeatAt: 5000, expiresAt: 35_000, concurrency: 8 }, { ...row, id: 'p2', startedAt: 2000 }]);
      await store.removeWorker('p1');
      expect((await store.workers()).map((w) => w.id)).toEqual(['p2']);
    });

    it('leadership: one holder at a time, renewed by it, taken over when expired, dead or resigned', async () => {
      const second = await ledger.open();
      const now = 1_000_000;
      const grants = await Promise.all([store.lead('maintenance', 'a', 10_000, now), second.lead('maintenance', 'b', 10_000, now)]);
      expect(grants.filter(Boolean)).toHaveLength(1);
      const [leader, other] = grants[0] ? ['a', 'b'] : ['b', 'a'];
      expect(await store.lead('maintenance', leader, 10_000, now + 5000)).toBe(true);
      expect(await store.lead('maintenance', other, 10_000, now + 14_000)).toBe(false); // renewed to now + 15 000
      expect(await store.lead('maintenance', other, 10_000, now + 14_000, [leader])).toBe(true); // its holder is dead
      expect(await store.lead('maintenance', leader, 10_000, now + 14_000)).toBe(false);
      expect(await store.lead('maintenance', leader, 10_000, now + 30_000)).toBe(true); // expired
      await store.resign('maintenance', other); // not the holder: nothing happens
      expect(await store.lead('maintenance', other, 10_000, now + 31_000)).toBe(false);
      await store.resign('maintenance', leader);
      expect(await store.lead('maintenance', other, 10_000, now + 31_000)).toBe(true);
      expect(await store.lead('other-role', leader, 10_000, now + 31_000)).toBe(true);
    });

    it('a durable consumer cursor is null until saved, then what was saved last', async () => {
      expect(await store.cursor('webhooks')).toBeNull();
      await store.saveCursor('webhooks', 12);
      await store.saveCursor('webhooks', 40);
      await store.saveCursor('reconciliation', 3);
      expect(await store.cursor('webhooks')).toBe(40);
      expect(await store.cursor('reconciliation')).toBe(3);
    });
  });

  describe('prune', () => {
    it('deletes finished runs of the rule\'s state that ended before the cutoff, with their events, in batches', async () => {
      const now = Date.now();
      const old = await started(record(), record(), record(), record());
      await store.apply([succeed(old[0]!.id), succeed(old[1]!.id), succeed(old[2]!.id), fail(old[3]!.id)]);
      const live = record();
      const recent = record({ state: 'SUCCESS', finishedAt: now + 60_000 });
      await store.insert([live, recent]);
      const cutoff = Date.now() + 1000;
      expect(await store.prune({ state: 'SUCCESS', before: cutoff }, 2)).toBe(2);
      expect(await store.prune({ state: 'SUCCESS', before: cutoff }, 2)).toBe(1);
      expect(await store.prune({ state: 'SUCCESS', before: cutoff }, 2)).toBe(0);
      for (const run of old.slice(0, 3)) {
        expect(await store.get(run.id, '*')).toBeNull();
        expect(await store.events({ afterSeq: 0, limit: 10, taskId: run.id }, '*')).toEqual([]);
      }
      const left = await store.events({ afterSeq: 0, limit: 100 }, '*');
      expect(new Set(left.map((e) => e.taskId))).toEqual(new Set([old[3]!.id, live.id, recent.id]));
      expect((await store.stats('*', Date.now())).byState).toEqual({ PENDING: 1, STARTED: 0, RETRY: 0, SUCCESS: 1, FAILURE: 1, REVOKED: 0 });
      expect(await store.prune({ state: 'FAILURE', before: cutoff }, 10)).toBe(1);
    });

    it('a rule limited to some definitions, or to all but some, deletes only theirs', async () => {
      const runs = await started(record({ name: 'a' }), record({ name: 'b' }), record({ name: 'c' }), record({ name: 'c' }));
      await store.apply(runs.map((r) => revoke(r.id)));
      const cutoff = Date.now() + 1000;
      expect(await store.prune({ state: 'REVOKED', before: cutoff, names: ['a', 'x'] }, 10)).toBe(1);
      expect(await store.prune({ state: 'REVOKED', before: cutoff, exceptNames: ['b'] }, 10)).toBe(2);
      expect((await store.list({ limit: 10 }, '*')).tasks.map((r) => r.name)).toEqual(['b']);
      expect(await store.prune({ state: 'REVOKED', before: Date.now() - 60_000 }, 10)).toBe(0); // ended after that cutoff
    });

    it('seqs are never reused after the newest events are pruned', async () => {
      const [run] = await started(record());
      const [done] = await store.apply([succeed(run!.id)]);
      expect(await pruneAll(store, Date.now() + 1000, 10)).toBe(1);
      const [next] = await store.insert([record()]);
      expect(next!.seq).toBeGreaterThan(done!.seq);
    });
  });

  describe('queue control (unique and cache keys, key windows, pauses)', () => {
    const requeue = (id: string): TaskChange => ({ id, to: 'PENDING', from: ['FAILURE', 'REVOKED'], patch: { finishedAt: null }, event: 'enqueued' });

    it('a unique key holds one live run: a second is skipped until the first ends, and a retry meanwhile is refused', async () => {
      const first = record({ uniqueKey: 'u:sync:73' });
      const twin = record({ uniqueKey: 'u:sync:73' });
      expect(await store.insert([first])).toHaveLength(1);
      expect(await store.insert([twin])).toEqual([]);
      expect((await store.findLive('u:sync:73'))!.id).toBe(first.id);
      expect((await store.get(first.id, '*'))!.uniqueKey).toBe('u:sync:73');
      await store.claim({ limit: 1, now: Date.now(), worker: 'w1' });
      expect((await store.findLive('u:sync:73'))!.state).toBe('STARTED');
      await store.apply([fail(first.id)]);
      expect(await store.findLive('u:sync:73')).toBeNull();
      const next = record({ uniqueKey: 'u:sync:73' });
      expect(await store.insert([next])).toHaveLength(1);
      // Putting the ended run back in the queue would make two live runs of the key.
      await expect(store.apply([requeue(first.id)])).rejects.toMatchObject({ code: expect.stringMatching(/^(SQLITE_CONSTRAINT_UNIQUE|23505)$/) });
      expect((await store.get(first.id, '*'))!.state).toBe('FAILURE');
      expect(await store.findLive('u:sync:73')).toMatchObject({ id: next.id });
    });

    it('finds the newest SUCCESS run of a cache key that finished since a time', async () => {
      const [a, b] = await started(record({ cacheKey: 'c:report:1' }), record({ cacheKey: 'c:report:1' }));
      await store.apply([succeed(a!.id, 'first')]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.apply([fail(b!.id)]);
      const finished = (await store.get(a!.id, '*'))!.finishedAt!;
      expect(await store.findCached('c:report:1', finished)).toMatchObject({ id: a!.id, result: 'first' });
      expect(await store.findCached('c:report:1', finished + 1)).toBeNull();
      expect(await store.findCached('c:other', 0)).toBeNull();
    });

    it('releases an idempotency key only from a run launched before the window began', async () => {
      const old = record({ idempotencyKey: 'k-window', createdAt: Date.now() - 10_000 });
      await store.insert([old]);
      expect(await store.releaseIdempotencyKey('73', 'k-window', old.createdAt)).toBe(false);
      expect(await store.releaseIdempotencyKey('4', 'k-window', Date.now())).toBe(false);
      expect(await store.releaseIdempotencyKey('73', 'k-window', Date.now())).toBe(true);
      expect((await store.get(old.id, '*'))!.idempotencyKey).toBeNull();
      expect(await store.findByIdempotencyKey('73', 'k-window')).toBeNull();
      expect(await store.insert([record({ idempotencyKey: 'k-window' })])).toHaveLength(1);
    });

    it('keeps pauses of queues and task types, seen by every store on the ledger', async () => {
      const pause = { kind: 'queue' as const, name: 'reports', pausedAt: 1_700_000_000_000, pausedBy: 'key-1' };
      expect(await store.setPaused(pause, true)).toBe(true);
      expect(await store.setPaused({ ...pause, pausedAt: 1 }, true)).toBe(false);
      expect(await store.setPaused({ kind: 'task_type', name: 'demo.job', pausedAt: 2, pausedBy: null }, true)).toBe(true);
      const other = await ledger.open();
      expect(await other.pauses()).toEqual([pause, { kind: 'task_type', name: 'demo.job', pausedAt: 2, pausedBy: null }]);
      expect(await other.setPaused(pause, false)).toBe(true);
      expect(await store.setPaused(pause, false)).toBe(false);
      expect((await store.pauses()).map((p) => p.name)).toEqual(['demo.job']);
    });

    it('lists by queue', async () => {
      const [slow, fast] = [record({ queue: 'slow' }), record({ queue: 'fast' })];
      await store.insert([slow, fast]);
      expect((await store.list({ queues: ['slow'], limit: 10 }, '*')).tasks.map((t) => t.id)).toEqual([slow.id]);
    });
  });
});
