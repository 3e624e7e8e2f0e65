import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { ensureBuilt, ROOT } from './built.js';
import { eventually, startServer, withTimeScale } from './helpers.js';

// The CLI runs as a real child process (bin/taskyard.js, the built code in dist/) against a real
// server in this process. execFile is asynchronous on purpose: a sync spawn would block the server
// it is talking to.

const BIN = fileURLToPath(new URL('../bin/taskyard.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.TASKYARD_URL;
  delete env.TASKYARD_API_KEY;
  Object.assign(env, extraEnv);
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A port nothing listens on: bind to 0, read it, close. */
function freePort(): Promise<number> {
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

beforeAll(() => ensureBuilt(), 180_000);

describe('taskyard CLI', () => {
  let url: string;
  let close: () => Promise<void>;
  const run = (...args: string[]) => cli(['--url', url, ...args]);

  beforeAll(async () => {
    ({ url, close } = await startServer({ tasks: demoTasks, categoryRules }));
  });

  afterAll(async () => {
    await close?.();
  });

  it('launch --wait shows progress, prints the result and exits 0', async () => {
    const r = await run('launch', 'sii.sync_documents', '--param', 'company_id=73', '--param', 'months=2', '--wait');
    expect(r.stderr).toMatch(/\d+%/);
    expect(r.stderr).toContain('100%');
    expect(r.stderr).toContain('SUCCESS');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.success).toBe(true);
    expect(result.compras.total).toBeGreaterThan(0);
  });

  it('launch prints the id; string-typed params stay strings, others parse as JSON', async () => {
    const r = await run('launch', 'sii.sync_documents', '-p', 'company_id=73', '-p', 'months=3');
    expect(r.code).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const status = await run('--json', 'status', id);
    expect(status.code).toBe(0);
    const task = JSON.parse(status.stdout);
    expect(task.params).toMatchObject({ company_id: '73', months: 3 });
    expect(task.tenant_id).toBe('73');
  });

  it('launch --params-json with --json prints the task', async () => {
    const r = await run('launch', 'sii.sync_f29', '--params-json', '{"company_id":"4"}', '--json');
    expect(r.code).toBe(0);
    const task = JSON.parse(r.stdout);
    expect(task.name).toBe('sii.sync_f29');
    expect(task.params.company_id).toBe('4');
  });

  it('a failing task exits 1 with its error', async () => {
    const r = await run('launch', 'sii.sync_documents', '-p', 'company_id=does-not-exist', '--wait');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Company not found');
    expect(r.stderr).toContain('FAILURE');
  });

  it('invalid params exit 2 with the server detail', async () => {
    const r = await run('launch', 'sii.sync_documents', '-p', 'company_id=73', '-p', 'months=50');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Invalid parameters');
    expect(r.stderr).toContain('months');
    expect(r.stdout).toBe('');
  });

  it('an unknown task type exits 2 with the server detail', async () => {
    const r = await run('launch', 'no.such_task');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown task type');
  });

  it('usage errors exit 2', async () => {
    const runs = await Promise.all([run('launch', 'sii.sync_documents', '-p', 'novalue'), run('ls', '--limit', '0'), run('frobnicate')]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2]);
    expect(runs[0]!.stderr).toContain('--param expects key=value');
  });

  it('status shows a readable summary; an unknown id is "not found", exit 2', async () => {
    const launched = await run('launch', 'sii.sync_documents', '-p', 'company_id=73', '--wait');
    expect(launched.code).toBe(0);
    const { stdout } = await run('--json', 'ls', '--company', '73', '--limit', '1');
    const id = JSON.parse(stdout).tasks[0].task_id;

    const r = await run('status', id);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(id);
    expect(r.stdout).toContain('sii.sync_documents');
    expect(r.stdout).toMatch(/State\s+SUCCESS/);
    expect(r.stdout).toContain('100%');

    const missing = '01900000-0000-7000-8000-000000000000';
    const nf = await run('status', missing);
    expect(nf.code).toBe(2);
    expect(nf.stderr).toContain(`Task ${missing} not found`);
  });

  it('ls shows a table, filters, and --all follows the cursor', async () => {
    const r = await run('ls', '--company', '73');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATE\s+PROGRESS\s+TENANT\s+CREATED\s+DURATION$/);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines.slice(1)) expect(line).toMatch(/^[0-9a-f-]{36}\s+\S+\s+(PENDING|STARTED|RETRY|SUCCESS|FAILURE|REVOKED)\s+\d+%\s+73\s/);

    const failed = await run('ls', '--state', 'FAILURE');
    expect(failed.stdout).toContain('does-not-exist');
    expect(failed.stdout).not.toMatch(/\sSUCCESS\s/);

    const [all, pages] = await Promise.all([run('--json', 'ls', '--limit', '500'), run('--json', 'ls', '--all', '--limit', '2')]);
    const everything = JSON.parse(all.stdout);
    const paged = JSON.parse(pages.stdout);
    expect(everything.count).toBeGreaterThan(2);
    expect(paged.count).toBe(everything.count);
    expect(paged.next_cursor).toBeNull();
    expect(paged.tasks.map((t: { task_id: string }) => t.task_id)).toEqual(everything.tasks.map((t: { task_id: string }) => t.task_id));

    const one = await run('ls', '--limit', '1');
    expect(one.stdout.trim().split('\n')).toHaveLength(2);
    expect(one.stderr).toContain('--all');
  });

  it('cancel revokes a delayed task, refuses twice, and retry runs it', async () => {
    const launched = await run('launch', 'sii.sync_documents', '-p', 'company_id=73', '--countdown', '3600');
    expect(launched.code).toBe(0);
    const id = launched.stdout.trim();

    const cancelled = await run('cancel', id, '--reason', 'not today');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toContain(`Task ${id} revoked`);
    const task = JSON.parse((await run('--json', 'status', id)).stdout);
    expect(task.state).toBe('REVOKED');
    expect(task.revoke_reason).toBe('not today');

    const again = await run('cancel', id);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already finished');

    const retried = await run('retry', id, '--wait');
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout).success).toBe(true);

    const notFound = await run('cancel', '01900000-0000-7000-8000-000000000000');
    expect(notFound.code).toBe(2);
    expect(notFound.stderr).toContain('not found');
  });

  it('retry of a failed task queues it again', async () => {
    const failed = await run('--json', 'launch', 'sii.sync_documents', '-p', 'company_id=nobody', '--wait');
    expect(failed.code).toBe(1);
    const id = JSON.parse(failed.stdout).task_id;
    const r = await run('retry', id);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Task ${id} queued for retry`);
  });

  it('stats shows counts by state, queue depth and workers', async () => {
    const r = await run('stats');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('By state:');
    expect(r.stdout).toMatch(/SUCCESS\s+\d+/);
    expect(r.stdout).toContain('Queue depth:');
    expect(r.stdout).toContain('Workers:');
    const json = JSON.parse((await run('--json', 'stats')).stdout);
    expect(json.by_state.SUCCESS).toBeGreaterThan(0);
  });

  it('types lists categories, task names and parameters', async () => {
    const r = await run('types');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sii \(\d+\)/m);
    expect(r.stdout).toContain('sii.sync_documents');
    expect(r.stdout).toMatch(/company_id: string, required/);
    expect(r.stdout).toContain('reconciliation');
  });

  it('an unreachable server exits 2 with a clear message', async () => {
    const port = await freePort();
    const r = await cli(['--url', `http://127.0.0.1:${port}`, 'ls']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Cannot reach Taskyard at http://127.0.0.1:${port}: is the server running? (taskyard serve)`);
  });

  it('sends --api-key (or TASKYARD_API_KEY) as a bearer token; none is a 401, exit 2', async () => {
    const key = 'cli-test-key-0123456789abcdef';
    const secured = await startServer({ tasks: demoTasks, categoryRules, apiKeys: [{ key, role: 'viewer', tenants: '*' }] });
    try {
      const anonymous = await cli(['--url', secured.url, 'stats']);
      expect(anonymous.code).toBe(2);
      expect(anonymous.stderr).toContain('Authentication required');
      expect(anonymous.stderr).toContain('--api-key');
      const withKey = await cli(['--url', secured.url, '--api-key', key, '--json', 'stats']);
      expect(withKey.code).toBe(0);
      expect(JSON.parse(withKey.stdout).total).toBe(0);
      const fromEnv = await cli(['types'], { TASKYARD_URL: secured.url, TASKYARD_API_KEY: key });
      expect(fromEnv.code).toBe(0);
      expect(fromEnv.stdout).toContain('sii.sync_documents');
    } finally {
      await secured.close();
    }
  });
});

describe('taskyard --help', () => {
  // CPU time, not wall time: it does not depend on how busy the machine is. A bare `node` costs
  // about 80 ms; the help about 110 ms; loading the server stack (Fastify, SQLite, pino) for it
  // would cost about 700 ms more.
  const measure = `process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write('cpu-ms ' + (u.user + u.system) / 1000 + '\\n'); });
await import(process.argv[1]);`;

  it('starts from the built code without loading the server stack', async () => {
    const r = await new Promise<Run>((resolve) => {
      execFile(process.execPath, ['--input-type=module', '-e', measure, BIN, '--help'], { env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) =>
        resolve({ code: error ? -1 : 0, stdout, stderr }),
      );
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: taskyard');
    expect(r.stdout).toMatch(/^\s+logs \[options\] <task_id>/m);
    const cpuMs = Number(/cpu-ms ([\d.]+)/.exec(r.stderr)?.[1]);
    expect(cpuMs).toBeGreaterThan(0);
    expect(cpuMs).toBeLessThan(400);
  });
});

describe('taskyard logs', () => {
  let url: string;
  let close: () => Promise<void>;
  const run = (...args: string[]) => cli(['--url', url, ...args]);

  beforeAll(async () => {
    ({ url, close } = await startServer({ tasks: demoTasks, categoryRules }));
  });

  afterAll(async () => {
    await close?.();
  });

  it("prints a finished task's timeline, oldest first", async () => {
    const launched = await run('--json', 'launch', 'sii.sync_documents', '-p', 'company_id=73', '-p', 'months=2', '--wait');
    expect(launched.code).toBe(0);
    const id = JSON.parse(launched.stdout).task_id;

    const r = await run('logs', id);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const types = lines.map((line) => line.split(/\s{2,}/)[1]);
    expect(types[0]).toBe('enqueued');
    expect(types[1]).toBe('started');
    expect(types.at(-1)).toBe('succeeded');
    expect(types.filter((t) => t === 'progress').length).toBeGreaterThanOrEqual(6); // 3 kinds x 2 months
    expect(r.stdout).toMatch(/progress\s+STARTED\s+\d+%\s+compras \d{6}/);
    expect(lines.at(-1)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+succeeded\s+SUCCESS\s+attempt 1 in \d/);

    // --json: one event per line, in seq order, the API's shape.
    const asJson = await run('--json', 'logs', id);
    const events = asJson.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(events).toHaveLength(lines.length);
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
    expect(events[0]).toMatchObject({ type: 'enqueued', state: 'PENDING' });
    expect(events.at(-1)).toMatchObject({ type: 'succeeded', state: 'SUCCESS' });
  });

  it('shows why a task failed, and an unknown id is "not found", exit 2', async () => {
    const failed = await run('--json', 'launch', 'sii.sync_documents', '-p', 'company_id=nobody', '--wait');
    const id = JSON.parse(failed.stdout).task_id;
    const r = await run('logs', id);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/failed\s+FAILURE\s+.*Company not found/);

    const missing = '01900000-0000-7000-8000-000000000000';
    const nf = await run('logs', missing);
    expect(nf.code).toBe(2);
    expect(nf.stderr).toContain(`Task ${missing} not found`);
  });

  it('shows a cancel with its reason', async () => {
    const id = (await run('launch', 'sii.sync_documents', '-p', 'company_id=73', '--countdown', '3600')).stdout.trim();
    expect((await run('cancel', id, '--reason', 'not today')).code).toBe(0);
    const r = await run('logs', id);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/revoked\s+REVOKED\s+not today\s+soft$/);
  });

  it('--follow prints events as they happen and returns once the task has finished', async () => {
    // One simulated month takes 1 s at scale 1: 3 months at 0.5 keep the run going ~1.5 s.
    await withTimeScale('0.5', async () => {
      const id = (await run('launch', 'sii.sync_documents', '-p', 'company_id=73', '-p', 'months=3')).stdout.trim();
      const [followed, seenWhileRunning] = await Promise.all([
        run('logs', id, '--follow'),
        eventually(async () => (await run('--json', 'status', id)).stdout.includes('"STARTED"')),
      ]);
      expect(seenWhileRunning).toBe(true);
      expect(followed.code).toBe(0);
      const types = followed.stdout.trim().split('\n').map((line) => line.split(/\s{2,}/)[1]);
      expect(types.filter((t) => t === 'progress').length).toBeGreaterThanOrEqual(9);
      expect(types.at(-1)).toBe('succeeded');
      // Without --follow, a logs started while it ran would have stopped before the end.
      const whole = await run('logs', id);
      expect(followed.stdout).toBe(whole.stdout);
    });
  });
});

/** A free port, a data dir and a tasks module of the user's, then `taskyard serve --tasks` on them. */
describe('taskyard serve --tasks', () => {
  // Inside the repository, so `import 'taskyard'` resolves to this package's built exports.
  const dir = join(ROOT, '.tmp');
  let work: string;
  const servers: ChildProcess[] = [];

  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
    work = mkdtempSync(join(dir, 'cli-serve-'));
    writeFileSync(
      join(work, 'tasks.mjs'),
      `import { z } from 'zod';
import { defineTask } from 'taskyard';
import { threadId } from 'node:worker_threads';

export const greet = defineTask({
  name: 'greet',
  params: z.object({ who: z.string() }),
  async run(params, ctx) {
    await ctx.progress(50, 'warming up');
    ctx.log('greeting', { who: params.who });
    return { greeting: 'Hello, ' + params.who };
  },
});

// Runs in a worker thread: from the built code this needs no TypeScript loader.
const whereAmI = defineTask({ name: 'where_am_i', isolation: 'thread', run: () => ({ threadId }) });

export default [greet, whereAmI];
export const notATask = { name: 'not a task' };
`,
    );
    writeFileSync(
      join(work, 'tasks.ts'),
      `import { threadId } from 'node:worker_threads';
import { z } from 'zod';
import { defineTask, type TaskContext } from 'taskyard';

export const typed = defineTask({
  name: 'typed.add',
  isolation: 'thread',
  params: z.object({ a: z.number(), b: z.number() }),
  run: (params, _ctx: TaskContext): { sum: number; threadId: number } => ({ sum: params.a + params.b, threadId }),
});
`,
    );
    writeFileSync(join(work, 'empty.mjs'), 'export const answer = 42;\n');
  });

  afterAll(() => {
    for (const server of servers) server.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  /** Starts `taskyard serve` and waits until it answers; rejects with its stderr if it exits first. */
  async function startServe(module: string): Promise<{ url: string; child: ChildProcess; stderr: () => string }> {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, TASKYARD_LOG_LEVEL: 'silent' };
    delete env.TASKYARD_API_KEYS;
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, [BIN, 'serve', '--tasks', module, '--port', String(port), '--data-dir', join(work, 'data-' + port)], { cwd: work, env });
    servers.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`))));
    const url = `http://127.0.0.1:${port}`;
    await Promise.race([exited, eventually(async () => (await fetch(`${url}/api/tasks/types`)).ok, 60_000, 100)]);
    return { url, child, stderr: () => stderr };
  }

  const stop = (child: ChildProcess) =>
    new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });

  it("serves the user's definitions, not the demo, and runs them (thread isolation included)", async () => {
    const { url, child } = await startServe('./tasks.mjs');
    const run = (...args: string[]) => cli(['--url', url, ...args]);

    const types = await run('--json', 'types');
    const names = JSON.parse(types.stdout).categories.flatMap((c: { tasks: Array<{ name: string }> }) => c.tasks.map((t) => t.name));
    expect(names.sort()).toEqual(['greet', 'where_am_i']);

    const greeted = await run('launch', 'greet', '-p', 'who=Ada', '--wait');
    expect(greeted.code).toBe(0);
    expect(JSON.parse(greeted.stdout)).toEqual({ greeting: 'Hello, Ada' });

    const isolated = await run('launch', 'where_am_i', '--wait');
    expect(isolated.code).toBe(0);
    expect(JSON.parse(isolated.stdout).threadId).toBeGreaterThan(0);

    const logs = await run('logs', JSON.parse((await run('--json', 'ls', '--name', 'greet')).stdout).tasks[0].task_id);
    expect(logs.stdout).toMatch(/log\s+STARTED\s+greeting\s+who=Ada/);

    expect(await stop(child)).toBe(0);
  }, 120_000);

  it('loads a TypeScript tasks module through tsx when tsx is installed', async () => {
    const { url, child } = await startServe('tasks.ts');
    const r = await cli(['--url', url, 'launch', 'typed.add', '--params-json', '{"a":2,"b":3}', '--wait']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.sum).toBe(5);
    expect(result.threadId).toBeGreaterThan(0);
    expect(await stop(child)).toBe(0);
  }, 120_000);

  it('refuses a missing --tasks, a missing file and a module without definitions (exit 2)', async () => {
    const [none, missing, empty] = await Promise.all([
      cli(['serve']),
      cli(['serve', '--tasks', join(work, 'nope.mjs')]),
      cli(['serve', '--tasks', join(work, 'empty.mjs')]),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("required option '--tasks <module>' not specified");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`no such file ${join(work, 'nope.mjs')}`);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('exports no task definitions');
  });
});
