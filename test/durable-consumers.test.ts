/**
 * Durable consumers across real processes sharing one SQLite ledger: webhooks are delivered once
 * per event however many processes run, a leader frozen and killed between a commit and its
 * delivery loses nothing, and the legacy reconciliation rows end consistent.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, http } from './helpers.js';
import { freshPostgresDatabase } from './postgres-db.js';
import { allTasks, kill9, newDataDir, removeDataDirs, startDemoServer as startProcess, stopChildren } from './processes.js';

afterEach(stopChildren);
afterAll(removeDataDirs);

const PEERS = { TASKYARD_LEASE_MS: '2000', TASKYARD_HEARTBEAT_MS: '500' };

/** The ledger under test: the data dir's SQLite file, or a fresh PostgreSQL database. */
let ledgerEnv: Record<string, string> = {};
const disposals: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const dispose of disposals.splice(0)) await dispose();
});
const startDemoServer = (dir: string, env: Record<string, string>) => startProcess(dir, { ...ledgerEnv, ...env });

/** A webhook receiver on loopback that records every delivery's (task, event). */
async function receiver(): Promise<{ url: string; got: Array<{ task_id: string; event: string; delivery_id: string }>; close: () => Promise<void> }> {
  const got: Array<{ task_id: string; event: string; delivery_id: string }> = [];
  const server: HttpServer = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const payload = JSON.parse(body);
      got.push({ task_id: payload.task_id, event: payload.event, delivery_id: payload.delivery_id });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const launch20 = async (url: string, allowUnavailable = false): Promise<string[] | null> => {
  const res = await http(`${url}/api/tasks/batch`, {
    body: { tasks: Array.from({ length: 20 }, (_, i) => ({ task_type: 'calculate_rating', params: { resource_id: `w-${i}` } })) },
  });
  if (allowUnavailable && res.status === 503) return null;
  expect(res.status).toBe(202);
  return res.body.tasks.map((t: { task_id: string }) => t.task_id) as string[];
};

describe.each(['SQLite', 'PostgreSQL'] as const)('durable consumers across processes on %s', (store) => {
  beforeEach(async () => {
    ledgerEnv = {};
    if (store === 'PostgreSQL') {
      const db = await freshPostgresDatabase();
      disposals.push(db.drop);
      ledgerEnv = { DATABASE_URL: db.url };
    }
  });

  it('deliver each webhook once per event with three processes, even when the leader freezes and dies before delivering', async () => {
    const hook = await receiver();
    try {
      const env = { ...PEERS, TASKYARD_WEBHOOK_URL: hook.url, TASKYARD_WEBHOOK_SECRET: 'a-long-enough-webhook-secret' };
      const dir = newDataDir();
      const leader = await startDemoServer(dir, env);
      const b = await startDemoServer(dir, env);
      const c = await startDemoServer(dir, env);

      const first = (await launch20(b.url))!;
      await eventually(() => first.every((id) => hook.got.some((g) => g.task_id === id)), 20_000, 50);

      // The leader stops dead (no heartbeat, no consumer) while runs keep finishing elsewhere...
      leader.child.kill('SIGSTOP');
      let second = await launch20(c.url, true);
      if (second) {
        await eventually(async () => {
          const tasks = await allTasks(b.url);
          return second!.every((id) => tasks.get(id)!.state === 'SUCCESS');
        }, 20_000);
        // ...and then dies: the deliveries it never made are made by the next leader.
        await kill9(leader);
      } else {
        // Frozen in the middle of a write, it holds the ledger's write lock (SQLite's, or the
        // event-order lock on PostgreSQL): writers get 503 until it resumes or dies. So it dies now.
        await kill9(leader);
        second = (await launch20(c.url))!;
      }
      await eventually(() => second.every((id) => hook.got.some((g) => g.task_id === id)), 20_000, 50);
      await new Promise((r) => setTimeout(r, 1500));

      // One delivery per event. A delivery in flight on the frozen process may be sent again by the
      // next one (at least once), but always under the same delivery_id, which receivers dedupe on.
      const deliveries = new Map<string, Set<string>>();
      for (const g of hook.got) {
        const key = `${g.task_id}:${g.event}`;
        deliveries.set(key, (deliveries.get(key) ?? new Set()).add(g.delivery_id));
      }
      for (const id of [...first, ...second!]) expect(deliveries.get(`${id}:succeeded`)?.size, id).toBe(1);
      expect(deliveries.size).toBe(40);
    } finally {
      await hook.close();
    }
  }, 90_000);

  it('run in a process that hosts them even when a process without them leads maintenance', async () => {
    const hook = await receiver();
    try {
      const dir = newDataDir();
      // Started first, so it leads maintenance; it has no webhooks configured.
      const plain = await startDemoServer(dir, PEERS);
      await startDemoServer(dir, { ...PEERS, TASKYARD_WEBHOOK_URL: hook.url, TASKYARD_WEBHOOK_SECRET: 'a-long-enough-webhook-secret' });
      const ids = (await launch20(plain.url))!;
      await eventually(() => ids.every((id) => hook.got.some((g) => g.task_id === id)), 20_000, 50);
      expect(hook.got.length).toBe(20);
    } finally {
      await hook.close();
    }
  }, 60_000);

  it('keep the legacy reconciliation rows consistent when the run executes in another process', async () => {
    const dir = newDataDir();
    const api = await startDemoServer(dir, { ...PEERS, TASKYARD_EXECUTE: 'false' });
    await startDemoServer(dir, PEERS);
    const started = await http(`${api.url}/reconciliation-tasks/start/`, { body: { tenant_id: 4, mode: 'compare_two_engines' } });
    expect(started.status).toBe(201);
    const row = await eventually(async () => {
      const r = await http(`${api.url}/reconciliation-tasks/${started.body.id}/`);
      return r.body.status === 'completed' ? r.body : null;
    }, 20_000, 100);
    const task = (await http(`${api.url}/api/tasks/${row.task_id}`)).body;
    expect(task.state).toBe('SUCCESS');

    // A cancel through the unified API shows in the module's row too.
    const second = await http(`${api.url}/reconciliation-tasks/start/`, { body: { tenant_id: 4, mode: 'match_many_to_many', config: { slow: true } } });
    expect(second.status).toBe(201);
    await eventually(async () => (await http(`${api.url}/api/tasks/${second.body.task_id}`)).body.state !== 'PENDING');
    const stop = await http(`${api.url}/api/tasks/${second.body.task_id}/stop/`, { body: { hard: true, reason: 'not now' } });
    expect([200, 202, 409]).toContain(stop.status);
    const final = (await http(`${api.url}/api/tasks/${second.body.task_id}`)).body.state;
    const expected = final === 'REVOKED' ? 'cancelled' : final === 'SUCCESS' ? 'completed' : 'failed';
    await eventually(async () => (await http(`${api.url}/reconciliation-tasks/${second.body.id}/`)).body.status === expected, 10_000, 100);
  }, 60_000);
});
