import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { startServer } from './helpers.js';

// The CLI runs as a real child process (bin/taskyard.js) against a real server in this process.
// execFile is asynchronous on purpose: a sync spawn would block the server it is talking to.

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
