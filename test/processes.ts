/**
 * Real server processes for crash and multi-process tests: the demo server
 * (`node --import tsx demo/server.ts`) started on a free port, killed with SIGKILL or stopped
 * with SIGTERM, and restarted on the same ledger.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { http, tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Server {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface TaskJson {
  task_id: string;
  name: string;
  state: string;
  attempt: number;
  result: unknown;
  worker: string | null;
  started_at: string | null;
  finished_at: string | null;
  [key: string]: unknown;
}

const children: ChildProcess[] = [];
const temps: Array<() => void> = [];

/** For afterEach: only the processes this file started, by their own handle. */
export function stopChildren(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** For afterAll. */
export function removeDataDirs(): void {
  for (const cleanup of temps.splice(0)) cleanup();
}

export function newDataDir(): string {
  const temp = tempDir('taskyard-proc-');
  temps.push(temp.cleanup);
  return temp.dir;
}

/** Starts the demo server on a free port (PORT=0) and waits for the URL it logs. */
export async function startDemoServer(dataDir: string, extraEnv: Record<string, string> = {}): Promise<Server> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    TASKYARD_DATA_DIR: dataDir,
    TASKYARD_DEMO_TIME_SCALE: '0.5',
    TASKYARD_CONCURRENCY: '20',
    TASKYARD_LOG_LEVEL: 'info',
    ...extraEnv,
  };
  if (!extraEnv.DATABASE_URL) delete env.DATABASE_URL;
  delete env.TASKYARD_API_KEYS;
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 20 s:\n${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
  expect((await http(`${url}/health`)).status).toBe(200);
  return { child, url, output: () => output, exited };
}

export async function kill9(server: Server): Promise<void> {
  server.child.kill('SIGKILL');
  const { signal } = await server.exited;
  expect(signal).toBe('SIGKILL');
}

/** Every task in the ledger, over HTTP. */
export async function allTasks(url: string): Promise<Map<string, TaskJson>> {
  const out = new Map<string, TaskJson>();
  let cursor: string | null = null;
  do {
    const res: { status: number; body: any } = await http(`${url}/api/tasks?limit=500${cursor ? `&cursor=${cursor}` : ''}`); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(res.status).toBe(200);
    for (const t of res.body.tasks as TaskJson[]) out.set(t.task_id, t);
    cursor = res.body.next_cursor;
  } while (cursor);
  return out;
}

export async function byState(url: string): Promise<Record<string, number>> {
  const res = await http(`${url}/api/tasks/statistics`);
  expect(res.status).toBe(200);
  return res.body.by_state;
}
