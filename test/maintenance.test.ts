/**
 * The leader's housekeeping on real stores and the real Redis: the pruner keeps what its policy
 * keeps (per state, per task, across batches) on SQLite and PostgreSQL; every round of the pruner,
 * status sync and orphan cleaner is a run under category `maintenance`; the status sync and the
 * orphan cleaner reconcile the ledger and a BullMQ queue of their own.
 *
 * The rescue of runs whose process was killed is proven with real processes elsewhere:
 * crash.test.ts ("kill -9 mid-run loses nothing") and multiprocess.test.ts ("kill -9 of one
 * process", "when the leader dies, another process leads").
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defineTask } from '../src/core/definition.js';
import { firstIdAt, uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import type { TaskState } from '../src/core/states.js';
import { Leadership } from '../src/maintenance/leadership.js';
import { processIdentity } from '../src/maintenance/peers.js';
import { Pruner } from '../src/maintenance/pruner.js';
import { Rescuer } from '../src/maintenance/rescuer.js';
import { maintenanceDefinition, RoundRecorder } from '../src/maintenance/rounds.js';
import { MaintenanceRunner } from '../src/maintenance/runner.js';
import type { MaintenanceService } from '../src/maintenance/service.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskStore } from '../src/store/types.js';
import { bareRecord, startCluster, type Cluster } from './bullmq-cluster.js';
import { dropSchema, eventually, freshSchema, silentLogger, startServer, startYard, tempDir, TEST_DATABASE_URL } from './helpers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const quick = defineTask({ name: 'quick', async run() { return 'ok'; } });

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** A UUIDv7 id of a run created at `ms` (uuidv7() never goes back in time within a process). */
const idAt = (ms: number): string => {
  const hex = randomBytes(10).toString('hex');
  return `${firstIdAt(ms)}-7${hex.slice(0, 3)}-8${hex.slice(3, 6)}-${hex.slice(6, 18)}`;
};

/** A finished (or live) run, as old as asked: created an hour before it ended. */
function run(name: string, state: TaskState, endedAgoMs: number, now: number): TaskRecord {
  const finishedAt = now - endedAgoMs;
  const createdAt = finishedAt - HOUR;
  const live = state === 'PENDING' || state === 'STARTED' || state === 'RETRY';
  return {
    id: idAt(createdAt),
    name,
    category: 'test',
    displayName: name,
    state,
    progress: 0,
    progressMessage: null,
    tenantId: '73',
    params: {},
    result: null,
    error: null,
    traceback: null,
    meta: null,
    attempt: live ? 0 : 1,
    maxAttempts: 1,
    priority: 0,
    queue: 'default',
    route: 'light',
    engine: 'local',
    worker: null,
    idempotencyKey: null,
    runAt: createdAt,
    cancelRequested: null,
    revokeReason: null,
    createdAt,
    startedAt: live ? null : createdAt,
    finishedAt: live ? null : finishedAt,
    updatedAt: finishedAt,
  };
}

const stores: Array<[string, () => Promise<TaskStore>]> = [
  [
    'sqlite',
    async () => {
      const temp = tempDir();
      const store = new SqliteStore({ filename: join(temp.dir, 'ledger.db') });
      cleanup.push(() => temp.cleanup(), () => store.close());
      await store.migrate();
      return store;
    },
  ],
  [
    'postgres',
    async () => {
      const schema = freshSchema();
      const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2 });
      cleanup.push(() => dropSchema(schema), () => store.close());
      await store.migrate();
      return store;
    },
  ],
];

describe.each(stores)('pruner on %s', (_kind, openStore) => {
  it('keeps what its policy keeps: per state, per task, live runs always', async () => {
    const store = await openStore();
    const now = Date.now();
    const runs = {
      successOld: run('quick', 'SUCCESS', 8 * DAY, now),
      successRecent: run('quick', 'SUCCESS', 6 * DAY, now),
      failureKept: run('quick', 'FAILURE', 8 * DAY, now),
      failureOld: run('quick', 'FAILURE', 31 * DAY, now),
      revokedOld: run('quick', 'REVOKED', 8 * DAY, now),
      syncOld: run('sii.sync_documents', 'SUCCESS', 2 * DAY, now),
      syncRecent: run('sii.sync_documents', 'SUCCESS', 12 * HOUR, now),
      syncFailure: run('sii.sync_documents', 'FAILURE', 8 * DAY, now),
      keptLonger: run('audit', 'SUCCESS', 20 * DAY, now),
      pending: run('quick', 'PENDING', 60 * DAY, now),
    };
    await store.insert(Object.values(runs));
    const pruner = new Pruner(store, silentLogger, {
      retention: { SUCCESS: '7d', FAILURE: '30d', REVOKED: '7d' },
      byName: { 'sii.sync_documents': { SUCCESS: '1d' }, audit: '90d' },
    });

    const report = await pruner.runOnce(now);

    expect(report).toEqual({ deleted: 4, by_state: { SUCCESS: 2, FAILURE: 1, REVOKED: 1 } });
    const left = new Set((await store.list({ limit: 100 }, '*')).tasks.map((r) => r.id));
    const kept = ['successRecent', 'failureKept', 'syncRecent', 'syncFailure', 'keptLonger', 'pending'] as const;
    expect(left).toEqual(new Set(kept.map((k) => runs[k].id)));
    expect(await store.events({ afterSeq: 0, limit: 10, taskId: runs.successOld.id }, '*')).toEqual([]);
    expect((await store.stats('*', now)).byState).toMatchObject({ SUCCESS: 3, FAILURE: 2, REVOKED: 0, PENDING: 1 });
    expect(await pruner.runOnce(now)).toMatchObject({ deleted: 0 });
  });

  it('deletes a backlog in batches of batchSize, one store call (one commit) each, up to an exact multiple', async () => {
    const store = await openStore();
    const now = Date.now();
    await store.insert([
      ...Array.from({ length: 4 }, (_, i) => run('bulk', 'SUCCESS', 10 * DAY + i, now)),
      ...Array.from({ length: 3 }, (_, i) => run('bulk', 'REVOKED', 10 * DAY + i, now)),
      run('bulk', 'SUCCESS', DAY, now),
    ]);
    const batches: number[] = [];
    const prune = store.prune.bind(store);
    store.prune = async (rule, limit) => {
      const deleted = await prune(rule, limit);
      batches.push(deleted);
      return deleted;
    };

    expect(await new Pruner(store, silentLogger, { retention: '7d', batchSize: 2 }).runOnce(now)).toMatchObject({ deleted: 7 });

    // SUCCESS: 2, 2, then an empty batch ends it; FAILURE: nothing; REVOKED: 2, 1.
    expect(batches).toEqual([2, 2, 0, 0, 2, 1]);
    expect((await store.list({ limit: 10 }, '*')).tasks).toHaveLength(1);
  });
});

describe('recorded rounds', () => {
  it('each round of the pruner and the status sync is a finished run under category maintenance, listed by the API', async () => {
    const server = await startServer({ tasks: [quick] });
    cleanup.push(() => server.close());
    const { yard, url } = server;
    // None at start: a recorded duty's first round comes one interval after start.
    expect((await yard.list({ categories: ['maintenance'], limit: 10 })).tasks).toEqual([]);

    expect(await yard.runMaintenance('pruner')).toMatchObject({ deleted: 0 });
    expect(await yard.runMaintenance('status_sync')).toEqual({ rescued: 0 });

    const response = await fetch(`${url}/api/tasks?category=maintenance`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { tasks: Array<Record<string, unknown>> };
    expect(body.tasks.map((t) => [t.name, t.state])).toEqual([
      ['taskyard.maintenance.status_sync', 'SUCCESS'],
      ['taskyard.maintenance.pruner', 'SUCCESS'],
    ]);
    const pruneRun = await yard.get(body.tasks[1]!.task_id as string);
    expect(pruneRun).toMatchObject({
      category: 'maintenance',
      displayName: 'Prune finished runs',
      result: { deleted: 0, by_state: { SUCCESS: 0, FAILURE: 0, REVOKED: 0 } },
      worker: yard.identity.id,
      tenantId: null,
    });
    expect(pruneRun.finishedAt).toBeGreaterThanOrEqual(pruneRun.startedAt!);

    // Internal: not a type anyone can list, launch or retry.
    const types = await (await fetch(`${url}/api/tasks/types`)).text();
    expect(types).not.toContain('taskyard.maintenance');
    const launch = await fetch(`${url}/api/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task_type: 'taskyard.maintenance.pruner', params: {} }),
    });
    expect(launch.status).toBe(400);
  });

  it('a round that throws is recorded FAILURE with its error; a round whose process died is failed by the rescuer, never re-run', async () => {
    const { yard, close } = await startYard({ tasks: [quick], maintenance: { pruner: false, statusSync: false } });
    cleanup.push(close);
    const broken: MaintenanceService = {
      name: 'broken',
      displayName: 'Always fails',
      leaderOnly: true,
      recorded: true,
      intervalMs: HOUR,
      async runOnce() {
        throw new Error('disk on fire');
      },
    };
    yard.registry.register(maintenanceDefinition(broken));
    const me = processIdentity('test');
    const runner = new MaintenanceRunner([broken], new Leadership(yard.store, me, 10_000), silentLogger, new RoundRecorder(yard.store, yard.registry, me.id));
    await expect(runner.runNow('broken')).rejects.toThrow('disk on fire');
    const [failed] = (await yard.list({ names: ['taskyard.maintenance.broken'], limit: 10 })).tasks;
    expect(failed).toMatchObject({ state: 'FAILURE', error: 'disk on fire', category: 'maintenance' });

    // A round left STARTED by a process that is gone (no live heartbeat row for `me`).
    const orphan = await new RoundRecorder(yard.store, yard.registry, me.id).begin(broken, Date.now());
    await new Rescuer(yard.store, yard.registry, silentLogger, me.host, 1000).runOnce(Date.now());
    expect(await yard.get(orphan.id)).toMatchObject({ state: 'FAILURE', error: expect.stringContaining('Worker lost') });
  });

  it('the leader records its scheduled rounds, each one interval after the previous one in the ledger', async () => {
    const { yard, close } = await startYard({ tasks: [quick], maintenance: { pruner: false, statusSync: { interval: '200ms' } } });
    cleanup.push(close);
    const rounds = await eventually(async () => {
      const { tasks } = await yard.list({ names: ['taskyard.maintenance.status_sync'], states: ['SUCCESS'], limit: 10 });
      return tasks.length >= 2 ? tasks : null;
    });
    expect(yard.isLeader).toBe(true);
    expect(rounds.every((r) => r.worker === yard.identity.id && (r.result as { rescued: number }).rescued === 0)).toBe(true);
    expect((await yard.list({ names: ['taskyard.maintenance.status_sync'], states: ['FAILURE'], limit: 1 })).tasks).toEqual([]);
    const [newer, older] = rounds;
    expect(newer!.createdAt - older!.createdAt).toBeGreaterThanOrEqual(200);
  });

  it('recordRounds: false leaves the ledger to tasks', async () => {
    const { yard, close } = await startYard({ tasks: [quick], maintenance: { recordRounds: false } });
    cleanup.push(close);
    await yard.runMaintenance('pruner');
    await yard.runMaintenance('status_sync');
    expect((await yard.list({ limit: 10 })).tasks).toEqual([]);
    expect(yard.registry.has('taskyard.maintenance.pruner')).toBe(false);
  });
});

describe('status sync and orphan cleaner on BullMQ', () => {
  const slowish = defineTask({ name: 'mt.job', async run() { return 'done'; } });

  async function cluster(): Promise<Cluster> {
    // No workers: jobs stay in Redis. The engine's own sweeper leaves alone anything changed in the
    // last hour, so only the rounds under test act.
    const c = await startCluster({
      tasks: [slowish],
      workers: 0,
      apiEngine: { sweeper: { intervalMs: HOUR, graceMs: HOUR } },
      maintenance: { orphanCleaner: { batchSize: 2 } },
    });
    cleanup.push(() => c.close());
    return c;
  }

  it('the status sync re-dispatches a waiting run whose job is gone, and leaves a live worker\'s run without a job to its lease', async () => {
    const c = await cluster();
    const lost = { ...bareRecord(c.api, 'mt.job'), updatedAt: Date.now() - 60_000 };
    const running = { ...bareRecord(c.api, 'mt.job'), state: 'STARTED' as const, attempt: 1, worker: c.api.identity.id, startedAt: Date.now() };
    await c.api.store.insert([lost, running]);
    expect(await c.hasJob(`${lost.id}.1`)).toBe(false);

    expect(await c.api.runMaintenance('status_sync')).toEqual({ rescued: 0, redispatched: 1, started_without_job: 1 });

    expect(await c.hasJob(`${lost.id}.1`)).toBe(true);
    expect((await c.api.get(running.id)).state).toBe('STARTED');
    const [round] = (await c.api.list({ categories: ['maintenance'], limit: 1 })).tasks;
    expect(round).toMatchObject({ name: 'taskyard.maintenance.status_sync', result: { redispatched: 1, started_without_job: 1 } });
  });

  it('the orphan cleaner removes jobs with no ledger run or a finished one, in batches, and leaves valid jobs', async () => {
    const c = await cluster();
    const waiting = await c.api.submit('mt.job');
    const delayed = await c.api.submit('mt.job', {}, { countdown: 3600 });
    const revoked = await c.api.submit('mt.job', {}, { countdown: 3600 });
    await c.api.cancel(revoked);
    const raw = c.rawQueue();
    const nobody = [uuidv7(), uuidv7(), uuidv7()];
    await raw.add('mt.job', { id: nobody[0] }, { jobId: `${nobody[0]}.1` }); // waiting
    await raw.add('mt.job', { id: nobody[1] }, { jobId: `${nobody[1]}.1`, delay: 3_600_000 }); // delayed
    await raw.add('mt.job', { id: nobody[2] }, { jobId: `${nobody[2]}.1`, priority: 5 }); // prioritized
    await raw.add('mt.job', { id: revoked }, { jobId: `${revoked}.1`, delay: 3_600_000 }); // its revoke never reached Redis
    await raw.add('not-ours', {}, { jobId: 'stray' });

    const report = await c.api.runMaintenance('orphan_cleaner');

    expect(report).toEqual({ scanned: 7, removed: 5 });
    for (const id of nobody) expect(await c.hasJob(`${id}.1`)).toBe(false);
    expect(await c.hasJob(`${revoked}.1`)).toBe(false);
    expect(await c.hasJob('stray')).toBe(false);
    expect(await c.hasJob(`${waiting}.1`)).toBe(true);
    expect(await c.hasJob(`${delayed}.1`)).toBe(true);
    expect(await c.api.runMaintenance('orphan_cleaner')).toEqual({ scanned: 2, removed: 0 });
    const rounds = (await c.api.list({ names: ['taskyard.maintenance.orphan_cleaner'], limit: 10 })).tasks;
    expect(rounds.map((r) => r.result)).toEqual([{ scanned: 2, removed: 0 }, { scanned: 7, removed: 5 }]);
  });
});
