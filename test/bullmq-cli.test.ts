/**
 * `taskyard worker --tasks <module>`: the user's tasks module run as a BullMQ worker process,
 * taking work an API process hands to Redis and recording it in the shared ledger.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BullMQEngine } from '../src/engines/bullmq/engine.js';
import { createStore } from '../src/store/index.js';
import { createTaskyard } from '../src/taskyard.js';
import { REDIS_URL } from './bullmq-cluster.js';
import { freshDatabase, stopScaleOutChildren } from './bullmq-processes.js';
import { threadTasks } from './fixtures/thread-tasks.js';
import { eventually, silentLogger } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = 'src/cli/main.ts';
const TASKS = 'test/fixtures/thread-tasks.ts';

afterAll(stopScaleOutChildren);

describe('taskyard worker --tasks', () => {
  it('runs the module\'s tasks for an API process, in a process of its own, and stops cleanly on SIGTERM', async () => {
    const db = await freshDatabase();
    const queue = `tyq-${randomBytes(5).toString('hex')}`;
    const env = { ...process.env, DATABASE_URL: db.url, REDIS_URL, TASKYARD_QUEUE: queue, TASKYARD_LOG_LEVEL: 'info' };
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', '--tasks', TASKS, '--concurrency', '3'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const id = (await eventually(() => /Taskyard worker (\S+) ready/.exec(output)?.[1], 30_000, 50)) as string;
      expect(output).toMatch(/concurrency 3; 3 task type\(s\) from test\/fixtures\/thread-tasks\.ts/);
      const api = await createTaskyard({
        tasks: threadTasks,
        logger: silentLogger,
        store: createStore(db.url),
        engine: new BullMQEngine({ redisUrl: REDIS_URL, queue, worker: false }),
      });
      try {
        const run = await api.submit('fixture.thread_echo', { value: 21 });
        expect(await api.waitFor(run, 20_000)).toMatchObject({ state: 'SUCCESS', result: { doubled: 42 }, worker: id, engine: 'bullmq' });
        const stats = await api.stats();
        expect(stats.workers.find((w) => w.name === id)).toMatchObject({ pid: child.pid, concurrency: 3, engine: 'bullmq' });
      } finally {
        await api.close();
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await db.drop();
    }
  }, 60_000);

  it('without REDIS_URL it exits 2 with one clear line', async () => {
    const env = { ...process.env, REDIS_URL: '' };
    const failed = await promisify(execFile)(process.execPath, ['--import', 'tsx', MAIN, 'worker', '--tasks', TASKS], { cwd: ROOT, env }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr.trim()).toMatch(/needs REDIS_URL, e\.g\. REDIS_URL=redis:\/\/127\.0\.0\.1:6379$/);
  }, 30_000);
});
