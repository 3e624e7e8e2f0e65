/**
 * Crash tests with real processes: the demo server (`node --import tsx demo/server.ts`) is
 * killed with SIGKILL mid-run, or stopped with SIGTERM (not ready while it drains), and restarted
 * on the same data dir.
 * Nothing may be lost, nothing finished may run again, and a cancel must survive.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventually, http } from './helpers.js';
import { allTasks, byState, kill9, newDataDir, removeDataDirs, startDemoServer, stopChildren, type TaskJson } from './processes.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

afterEach(stopChildren);
afterAll(removeDataDirs);

describe('crash and restart', () => {
  it('kill -9 mid-run loses nothing and runs nothing finished again', async () => {
    const dataDir = newDataDir();
    const first = await startDemoServer(dataDir);

    const tasks = Array.from({ length: 500 }, (_, i) =>
      i % 2 === 0
        ? { task_type: 'calculate_rating', params: { resource_id: `resource-${i}` } }
        : { task_type: 'sii.sync_documents', params: { company_id: '73' } },
    );
    const launched = await http(`${first.url}/api/tasks/batch`, { body: { tasks } });
    expect(launched.status).toBe(202);
    const ids: string[] = launched.body.tasks.map((t: TaskJson) => t.task_id);
    expect(new Set(ids).size).toBe(500);

    // Some finished, some in flight.
    await eventually(async () => {
      const s = await byState(first.url);
      return s.SUCCESS >= 60 && s.STARTED > 0;
    }, 20_000, 50);
    const before = await allTasks(first.url);
    await kill9(first);

    const succeededBefore = [...before.values()].filter((t) => t.state === 'SUCCESS');
    const startedBefore = [...before.values()].filter((t) => t.state === 'STARTED');
    expect(succeededBefore.length).toBeGreaterThanOrEqual(60);
    expect(startedBefore.length).toBeGreaterThan(0);
    expect(before.size).toBe(500);

    const second = await startDemoServer(dataDir);
    await eventually(async () => {
      const s = await byState(second.url);
      return s.PENDING + s.STARTED + s.RETRY === 0;
    }, 30_000, 100);
    const after = await allTasks(second.url);

    // None lost, none left live.
    expect(after.size).toBe(500);
    for (const id of ids) expect(after.has(id), id).toBe(true);
    const states = new Map<string, number>();
    for (const t of after.values()) states.set(t.state, (states.get(t.state) ?? 0) + 1);
    expect(Object.fromEntries(states)).toEqual({ SUCCESS: 500 });

    // Finished before the crash: untouched, not run again.
    for (const t of succeededBefore) {
      const now = after.get(t.task_id)!;
      expect(now.state).toBe('SUCCESS');
      expect(now.attempt).toBe(t.attempt);
      expect(now.started_at).toBe(t.started_at);
      expect(now.finished_at).toBe(t.finished_at);
      expect(now.result).toEqual(t.result);
    }
    // In flight at the crash: delivered again (at least once), within their attempts.
    const rerun = [...after.values()].filter((t) => t.attempt >= 2);
    expect(rerun.length).toBeGreaterThan(0);
    for (const t of after.values()) expect(t.attempt).toBeLessThanOrEqual(t.max_attempts as number);
    for (const t of startedBefore) expect(after.get(t.task_id)!.state).toBe('SUCCESS');
    expect(second.output()).toMatch(/rescued runs of a lost worker/);
  }, 60_000);

  it('a cancelled delayed task stays cancelled across kill -9 and restart', async () => {
    const dataDir = newDataDir();
    const first = await startDemoServer(dataDir);
    const launch = async () => {
      const res = await http(`${first.url}/api/tasks`, { body: { task_type: 'cleanup_sessions', params: {}, countdown: 2 } });
      expect(res.status).toBe(202);
      expect(res.body.state).toBe('PENDING');
      expect(res.body.eta).not.toBeNull();
      return res.body as TaskJson;
    };
    const cancelled = await launch();
    const control = await launch();
    const stopped = await http(`${first.url}/api/tasks/${cancelled.task_id}/stop`, { body: { reason: 'not needed' } });
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe('REVOKED');
    await kill9(first);

    const second = await startDemoServer(dataDir);
    const eta = Date.parse(cancelled.eta as string);
    await sleep(Math.max(0, eta + 500 - Date.now()));
    // The control task, delayed the same way, did run after the restart...
    const ran = await eventually(async () => {
      const res = await http(`${second.url}/api/tasks/${control.task_id}`);
      return res.body.state === 'SUCCESS' ? res.body : null;
    }, 10_000);
    expect(ran.started_at).not.toBeNull();
    // ...and the cancelled one never started.
    await sleep(300);
    const after = await http(`${second.url}/api/tasks/${cancelled.task_id}`);
    expect(after.body).toMatchObject({ state: 'REVOKED', started_at: null, attempt: 0, revoke_reason: 'not needed' });
  }, 30_000);

  it('a soft cancel of a running task survives kill -9: the run ends REVOKED, never retried', async () => {
    const dataDir = newDataDir();
    const first = await startDemoServer(dataDir);
    // The burn ignores its signal, so the soft cancel can only be recorded, not acted on, before the kill.
    const burn = await http(`${first.url}/api/tasks`, { body: { task_type: 'demo.cpu_burn', params: { ms: 60_000 } } });
    expect(burn.status).toBe(202);
    const id = burn.body.task_id as string;
    await eventually(async () => (await http(`${first.url}/api/tasks/${id}`)).body.state === 'STARTED');
    const stop = await http(`${first.url}/api/tasks/${id}/stop/`, { body: { reason: 'changed my mind' } });
    expect(stop.status).toBe(202);
    expect(stop.body).toMatchObject({ state: 'STARTED', cancel_requested: 'soft', revoke_reason: 'changed my mind' });
    await kill9(first);

    const second = await startDemoServer(dataDir);
    const after = await eventually(async () => {
      const res = await http(`${second.url}/api/tasks/${id}`);
      return res.body.state !== 'STARTED' ? res.body : null;
    }, 10_000);
    expect(after).toMatchObject({ state: 'REVOKED', attempt: 1, revoke_reason: 'changed my mind' });
    await sleep(300);
    expect((await http(`${second.url}/api/tasks/${id}`)).body).toMatchObject({ state: 'REVOKED', attempt: 1 });
  }, 40_000);

  it('SIGTERM lets running tasks finish, requeues the rest, and they complete after restart', async () => {
    const dataDir = newDataDir();
    const first = await startDemoServer(dataDir);
    // 20 slots: 20 syncs run (about 1.5 s each at this scale), 10 wait; one CPU burn outlasts the 10 s grace.
    const burn = await http(`${first.url}/api/tasks`, { body: { task_type: 'demo.cpu_burn', params: { ms: 60_000 }, priority: 10 } });
    expect(burn.status).toBe(202);
    const launched = await http(`${first.url}/api/tasks/batch`, {
      body: { tasks: Array.from({ length: 29 }, () => ({ task_type: 'sii.sync_documents', params: { company_id: '4', months: 3 } })) },
    });
    expect(launched.status).toBe(202);
    const syncIds: string[] = launched.body.tasks.map((t: TaskJson) => t.task_id);
    const burnId: string = burn.body.task_id;
    await eventually(async () => (await byState(first.url)).STARTED === 20, 10_000, 50);
    const running = [...(await allTasks(first.url)).values()].filter((t) => t.state === 'STARTED').map((t) => t.task_id);
    expect(running).toContain(burnId);

    const t0 = Date.now();
    first.child.kill('SIGTERM');
    // While it drains, the API still answers: alive, but not ready, so a load balancer moves
    // traffic away before the server closes.
    const draining = await eventually(async () => {
      const res = await http(`${first.url}/readyz`);
      return res.status === 503 ? res : null;
    }, 5000, 20);
    expect(draining.body).toMatchObject({ status: 'draining', checks: { store: 'ok' } });
    expect(draining.headers.get('retry-after')).toBe('5');
    expect((await http(`${first.url}/healthz`)).body).toEqual({ status: 'ok' });
    const { code } = await first.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);

    // Between the two processes, the ledger file itself says what the shutdown did: the syncs that
    // were running finished within the grace period, the burn was put back in the queue as if it
    // had never started, the waiting syncs are still waiting, and nothing is left STARTED.
    const ledger = new Database(join(dataDir, 'taskyard.db'), { readonly: true });
    const rows = new Map(
      (ledger.prepare('SELECT id, state, attempt, started_at FROM taskyard_tasks').all() as Array<{ id: string; state: string; attempt: number; started_at: number | null }>).map(
        (r) => [r.id, r],
      ),
    );
    ledger.close();
    expect(rows.size).toBe(30);
    for (const id of running.filter((id) => id !== burnId)) expect(rows.get(id)).toMatchObject({ state: 'SUCCESS', attempt: 1 });
    expect(rows.get(burnId)).toMatchObject({ state: 'PENDING', attempt: 0, started_at: null });
    for (const id of syncIds.filter((id) => !running.includes(id))) expect(rows.get(id)).toMatchObject({ state: 'PENDING', attempt: 0 });
    expect([...rows.values()].filter((r) => r.state === 'STARTED')).toEqual([]);

    const second = await startDemoServer(dataDir);
    // The burn outlived the grace period: it was requeued (its attempt did not count) and runs again.
    const burnAgain = await eventually(async () => {
      const res = await http(`${second.url}/api/tasks/${burnId}`);
      return res.body.state === 'STARTED' ? res.body : null;
    }, 10_000);
    expect(burnAgain.attempt).toBe(1);
    expect((await http(`${second.url}/api/tasks/${burnId}/stop`, { body: { hard: true } })).body.state).toBe('REVOKED');

    // The syncs that were waiting ran after the restart; nothing is left behind.
    await eventually(async () => {
      const s = await byState(second.url);
      return s.PENDING + s.STARTED + s.RETRY === 0;
    }, 15_000, 100);
    const final = await allTasks(second.url);
    for (const id of syncIds) expect(final.get(id)).toMatchObject({ state: 'SUCCESS', attempt: 1 });
    await kill9(second);
  }, 60_000);
});
