/**
 * Many processes, one ledger: real demo server processes sharing one SQLite file, and one
 * PostgreSQL database. Runs execute exactly once, a crash is rescued after its lease without
 * touching live processes' runs, cancels and events cross processes, and leadership moves when
 * the leader dies.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, http } from './helpers.js';
import { freshPostgresDatabase } from './postgres-db.js';
import { allTasks, kill9, newDataDir, removeDataDirs, startDemoServer as startProcess, stopChildren, type Server } from './processes.js';

afterEach(stopChildren);
afterAll(removeDataDirs);

/** Short leases, so a crash is noticed within about two seconds. */
const PEERS = { TASKYARD_LEASE_MS: '2000', TASKYARD_HEARTBEAT_MS: '500' };
const API_ONLY = { ...PEERS, TASKYARD_EXECUTE: 'false' };

function workerPid(worker: string | null): number {
  return Number(/:(\d+):[0-9a-f]+$/.exec(worker ?? '')?.[1]);
}

const LEADER = `SELECT holder FROM taskyard_leaders WHERE role = 'maintenance' AND expires_at > $1`;

/** The ledgers every test runs on: a SQLite file in the data dir, or a fresh PostgreSQL database. */
interface Ledger {
  env: Record<string, string>;
  leaderPid(dataDir: string): Promise<number | null>;
}

const sqlite: Ledger = {
  env: {},
  async leaderPid(dataDir) {
    const db = new Database(join(dataDir, 'taskyard.db'), { readonly: true });
    try {
      const row = db.prepare(LEADER.replace('$1', '?')).get(Date.now()) as { holder: string } | undefined;
      return row ? workerPid(row.holder) : null;
    } finally {
      db.close();
    }
  },
};

const disposals: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const dispose of disposals.splice(0)) await dispose();
});

let ledger: Ledger = sqlite;
let pgUrl = '';

const postgres: Ledger = {
  get env() {
    return { DATABASE_URL: pgUrl };
  },
  async leaderPid() {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    try {
      const { rows } = await client.query(LEADER, [Date.now()]);
      return rows[0] ? workerPid(rows[0].holder) : null;
    } finally {
      await client.end();
    }
  },
};

/** Every process of a test shares the ledger under test. */
const startDemoServer = (dir: string, env: Record<string, string>) => startProcess(dir, { ...ledger.env, ...env });
const leaderPid = (dir: string) => ledger.leaderPid(dir);

async function launch(server: Server, body: unknown): Promise<string> {
  const res = await http(`${server.url}/api/tasks`, { body });
  expect(res.status).toBe(202);
  return res.body.task_id;
}

/** Reads an SSE stream until `until` says stop; returns the frames' ids and parsed data. */
async function readEvents(
  url: string,
  headers: Record<string, string>,
  until: (frames: Array<{ id: number; data: any }>) => boolean, // eslint-disable-line @typescript-eslint/no-explicit-any
  timeoutMs = 20_000,
): Promise<Array<{ id: number; data: any }>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const frames: Array<{ id: number; data: any }> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    const res = await fetch(url, { headers, signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    while (!until(frames)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (id && data) frames.push({ id: Number(id), data: JSON.parse(data) });
      }
    }
    await reader.cancel().catch(() => {});
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return frames;
}

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
] as const)('many processes, one %s ledger', (_name, under) => {
  beforeEach(async () => {
    ledger = under;
    if (under === postgres) {
      const db = await freshPostgresDatabase();
      pgUrl = db.url;
      disposals.push(db.drop);
    }
  });

  it('runs 300 tasks exactly once across three processes, and a process starting up touches no live run', async () => {
    const dir = newDataDir();
    const a = await startDemoServer(dir, PEERS);
    const b = await startDemoServer(dir, PEERS);
    // Long runs in flight on A and B while C starts: C must leave them alone.
    const long = await Promise.all(
      Array.from({ length: 4 }, (_, i) => launch(i % 2 ? a : b, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 4 } })),
    );
    await eventually(async () => {
      const tasks = await allTasks(a.url);
      return long.every((id) => tasks.get(id)!.state === 'STARTED');
    });
    const c = await startDemoServer(dir, PEERS);

    const batch = await http(`${c.url}/api/tasks/batch`, {
      body: { tasks: Array.from({ length: 300 }, (_, i) => ({ task_type: 'calculate_rating', params: { resource_id: `r-${i}` } })) },
    });
    expect(batch.status).toBe(202);
    const ids: string[] = batch.body.tasks.map((t: { task_id: string }) => t.task_id);
    const done = await eventually(async () => {
      const tasks = await allTasks(b.url);
      return [...ids, ...long].every((id) => tasks.get(id)?.state === 'SUCCESS') ? tasks : null;
    }, 40_000, 200);
    for (const id of [...ids, ...long]) expect(done.get(id)!.attempt, id).toBe(1);
    // Every process took a share of the work.
    const pids = new Set(ids.map((id) => workerPid(done.get(id)!.worker)));
    expect(pids).toEqual(new Set([a.child.pid, b.child.pid, c.child.pid]));
    // Every process's statistics list every live worker, whichever process it is.
    for (const server of [a, b, c]) {
      const stats = await http(`${server.url}/api/tasks/statistics`);
      expect(new Set(stats.body.workers.map((w: { pid: number }) => w.pid))).toEqual(pids);
    }
  }, 90_000);

  it('kill -9 of one process: its runs are retried by another after the lease, nobody else\'s are touched', async () => {
    const dir = newDataDir();
    const a = await startDemoServer(dir, { ...PEERS, TASKYARD_CONCURRENCY: '4' });
    const b = await startDemoServer(dir, { ...PEERS, TASKYARD_CONCURRENCY: '4' });
    const ids = await Promise.all(
      Array.from({ length: 8 }, () => launch(a, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 3 } })),
    );
    const running = await eventually(async () => {
      const tasks = await allTasks(a.url);
      const started = ids.map((id) => tasks.get(id)!).filter((t) => t.state === 'STARTED');
      return started.length === 8 ? started : null;
    });
    const onB = running.filter((t) => workerPid(t.worker) === b.child.pid).map((t) => t.task_id);
    const onA = running.filter((t) => workerPid(t.worker) === a.child.pid).map((t) => t.task_id);
    expect(onB.length).toBe(4);
    expect(onA.length).toBe(4);
    await kill9(b);

    const after = await eventually(async () => {
      const tasks = await allTasks(a.url);
      return ids.every((id) => tasks.get(id)!.state === 'SUCCESS') ? tasks : null;
    }, 30_000, 100);
    for (const id of onB) {
      expect(after.get(id)!.attempt).toBe(2);
      expect(workerPid(after.get(id)!.worker)).toBe(a.child.pid);
    }
    for (const id of onA) expect(after.get(id)!.attempt).toBe(1);
    const timeline = (await http(`${a.url}/api/tasks/${onB[0]}/timeline`)).body.events.map((e: { type: string }) => e.type);
    expect(timeline).toContain('retry');
    expect(a.output()).toMatch(/rescued runs of a lost worker/);
  }, 60_000);

  it('a soft and a hard cancel sent to an API process stop runs executing in another process', async () => {
    const dir = newDataDir();
    const api = await startDemoServer(dir, API_ONLY);
    const worker = await startDemoServer(dir, PEERS);

    // Soft: the sync honours its signal and ends REVOKED on the worker.
    const soft = await launch(api, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 12 } });
    await eventually(async () => (await http(`${api.url}/api/tasks/${soft}`)).body.state === 'STARTED');
    const t0 = Date.now();
    const stop = await http(`${api.url}/api/tasks/${soft}/stop/`, { body: { reason: 'from the API' } });
    expect([200, 202]).toContain(stop.status);
    expect(stop.body.cancel_requested).toBe('soft');
    const revoked = await eventually(async () => {
      const r = await http(`${api.url}/api/tasks/${soft}`);
      return r.body.state === 'REVOKED' ? r.body : null;
    }, 5000);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(revoked).toMatchObject({ revoke_reason: 'from the API', attempt: 1 });
    expect(workerPid(revoked.worker)).toBe(worker.child.pid);

    // Hard: the CPU burn ignores its signal; its thread on the worker is killed.
    const burn = await launch(api, { task_type: 'demo.cpu_burn', params: { ms: 60_000 } });
    await eventually(async () => (await http(`${api.url}/api/tasks/${burn}`)).body.progress >= 10, 15_000);
    const hard = await http(`${api.url}/api/tasks/${burn}/stop/`, { body: { hard: true, reason: 'kill it' } });
    expect([200, 202]).toContain(hard.status);
    const killed = await eventually(async () => {
      const r = await http(`${api.url}/api/tasks/${burn}`);
      return r.body.state === 'REVOKED' ? r.body : null;
    }, 5000);
    expect(killed).toMatchObject({ cancel_requested: 'hard', revoke_reason: 'kill it' });
    // It really stopped: no progress is recorded after the revoke.
    await new Promise((r) => setTimeout(r, 3000));
    const events = (await http(`${api.url}/api/tasks/${burn}/timeline?limit=1000`)).body.events;
    expect(events.at(-1).type).toBe('revoked');
  }, 60_000);

  it('an event stream on one process sees runs in another, in order, with no gap across a reconnect', async () => {
    const dir = newDataDir();
    const api = await startDemoServer(dir, API_ONLY);
    const worker = await startDemoServer(dir, PEERS);
    const streamUrl = `${api.url}/api/tasks/events?company_id=73`;
    const first = readEvents(streamUrl, {}, (frames) => frames.length >= 6);
    await new Promise((r) => setTimeout(r, 300));
    const id = await launch(api, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 2 } });
    const head = await first;
    const lastId = head.at(-1)!.id;
    const rest = await readEvents(streamUrl, { 'last-event-id': String(lastId) }, (frames) => frames.some((f) => f.data.type === 'succeeded'));
    const frames = [...head, ...rest].filter((f) => f.data.task_id === id);
    const ids = frames.map((f) => f.id);
    expect(ids).toEqual([...new Set(ids)].sort((x, y) => x - y));
    // Exactly the run's timeline, as the ledger has it: nothing missed, nothing twice.
    const timeline = (await http(`${api.url}/api/tasks/${id}/timeline?limit=1000`)).body.events.map((e: { seq: number }) => e.seq);
    expect(ids).toEqual(timeline);
    expect(frames.filter((f) => f.data.type === 'progress').length).toBeGreaterThan(2);
    const record = (await http(`${api.url}/api/tasks/${id}`)).body;
    expect(workerPid(record.worker)).toBe(worker.child.pid);
  }, 60_000);

  it('when the leader dies, another process leads, and rescues the dead leader\'s runs', async () => {
    const dir = newDataDir();
    const first = await startDemoServer(dir, { ...PEERS, TASKYARD_CONCURRENCY: '2' });
    await eventually(async () => (await leaderPid(dir)) === first.child.pid);
    const second = await startDemoServer(dir, { ...PEERS, TASKYARD_CONCURRENCY: '2' });
    expect(await leaderPid(dir)).toBe(first.child.pid);
    const ids = await Promise.all(
      Array.from({ length: 4 }, () => launch(first, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 3 } })),
    );
    await eventually(async () => {
      const tasks = await allTasks(first.url);
      return ids.every((id) => tasks.get(id)!.state === 'STARTED');
    });
    await kill9(first);
    const t0 = Date.now();
    await eventually(async () => (await leaderPid(dir)) === second.child.pid, 10_000, 50);
    // Within one lease (2 s) plus a heartbeat (0.5 s).
    expect(Date.now() - t0).toBeLessThan(3000);
    const after = await eventually(async () => {
      const tasks = await allTasks(second.url);
      return ids.every((id) => tasks.get(id)!.state === 'SUCCESS') ? tasks : null;
    }, 30_000, 100);
    const rescued = ids.filter((id) => after.get(id)!.attempt === 2);
    expect(rescued.length).toBeGreaterThan(0);
  }, 60_000);
});
