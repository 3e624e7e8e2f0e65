/**
 * Real processes for the scale-out tests: demo API servers and `npm run worker` processes on one
 * PostgreSQL database of their own and one BullMQ queue of their own, plus throwaway Redis
 * servers a test may kill and restart without touching the machine's Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startDemoServer, type Server } from './processes.js';
import { TEST_DATABASE_URL } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcess[] = [];

/** For afterAll/afterEach: only the processes this file started, by their own handle. */
export function stopScaleOutChildren(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A PostgreSQL database of its own (the ledger's URL), dropped by `drop`. */
export async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `ty_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function track(child: ChildProcess): Proc {
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

async function waitForOutput(proc: Proc, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  for (;;) {
    const match = pattern.exec(proc.output());
    if (match) return match;
    if (exited) throw new Error(`${what} exited before it was ready:\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A demo API server (`npm start`) on the scale-out environment. */
export function startApi(dataDir: string, env: Record<string, string>): Promise<Server> {
  return startDemoServer(dataDir, env);
}

export interface WorkerProc extends Proc {
  /** Its worker id in the ledger (`bullmq@host:pid:suffix`). */
  id: string;
}

/** `npm run worker` (demo/worker.ts) on the same environment; resolves once it is ready. */
export async function startWorker(dataDir: string, env: Record<string, string>): Promise<WorkerProc> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    TASKYARD_DATA_DIR: dataDir,
    TASKYARD_DEMO_TIME_SCALE: '0.5',
    TASKYARD_CONCURRENCY: '20',
    TASKYARD_LOG_LEVEL: 'info',
    ...env,
  };
  delete childEnv.TASKYARD_API_KEYS;
  const proc = track(spawn(process.execPath, ['--import', 'tsx', 'demo/worker.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
  const match = await waitForOutput(proc, /Taskyard worker (\S+) ready/, 'worker');
  return { ...proc, id: match[1]! };
}

export interface ThrowawayRedis {
  port: number;
  url: string;
  start(): Promise<void>;
  kill(): Promise<void>;
}

/** A redis-server of its own on a free port, without persistence: a restart loses every job. */
export async function throwawayRedis(): Promise<ThrowawayRedis> {
  const port = await freePort();
  let proc: Proc | null = null;
  const redis: ThrowawayRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      if (proc) return; // running already
      proc = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] }));
      await waitForOutput(proc, /Ready to accept connections/, 'redis-server', 10_000);
    },
    async kill() {
      if (!proc) return;
      proc.child.kill('SIGKILL');
      await proc.exited;
      proc = null;
    },
  };
  await redis.start();
  return redis;
}
