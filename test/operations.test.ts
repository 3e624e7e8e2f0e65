/**
 * Operations: Prometheus metrics that agree with the ledger (both stores, local and BullMQ
 * engines), health and readiness probes against real outages (a PostgreSQL or Redis proxy cut),
 * per-key rate limiting, role checks, and `task_id` on every log line about a task.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { BullMQEngine } from '../src/engines/bullmq/engine.js';
import type { ApiKey } from '../src/http/auth.js';
import { buildApp } from '../src/http/app.js';
import { serve } from '../src/server.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { Taskyard } from '../src/taskyard.js';
import { REDIS_URL, startCluster } from './bullmq-cluster.js';
import { TEST_DATABASE_URL, dropSchema, eventually, freshSchema, http, startServer, startYard } from './helpers.js';
import { createWebhookTask, installWebhooks } from '../src/webhooks/index.js';
import { TcpProxy } from './tcp-proxy.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const ok = defineTask({
  name: 'ops.ok',
  params: z.object({ company_id: z.string().optional(), ms: z.number().default(0) }),
  async run(p) {
    if (p.ms) await new Promise((r) => setTimeout(r, p.ms));
    return 'done';
  },
});
const flaky = defineTask({
  name: 'ops.fail',
  params: z.object({ company_id: z.string() }),
  retry: { attempts: 2, backoff: 'fixed', delay: 10 },
  run: () => {
    throw new Error('always fails');
  },
});
const tasks = [ok, flaky];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

interface Deployment {
  url: string;
  yard: Taskyard;
}

/** The same checks on each ledger and engine: an HTTP server over a yard that runs `tasks`. */
const deployments: Record<string, () => Promise<Deployment>> = {
  'SQLite, local engine': async () => {
    const server = await startServer({ tasks });
    cleanups.push(server.close);
    return server;
  },
  'PostgreSQL, local engine': async () => {
    const schema = freshSchema();
    const server = await startServer({ tasks, store: new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 3 }) });
    cleanups.push(() => dropSchema(schema), server.close);
    return server;
  },
  'PostgreSQL, BullMQ workers (the API process runs nothing)': async () => {
    const cluster = await startCluster({ tasks });
    const server = await serve({ yard: cluster.api, host: '127.0.0.1', port: 0, apiKeys: [], handleSignals: false });
    cleanups.push(() => cluster.close(), () => server.app.close());
    return { url: server.url, yard: cluster.api };
  },
};

describe.each(Object.entries(deployments))('metrics on %s', (_label, deploy) => {
  it('agree with the ledger: counts by state, name and tenant class, durations, retries, queue depth', async () => {
    const { url } = await deploy();
    const launch = async (task_type: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      const res = await http(`${url}/api/tasks`, { body: { task_type, params, ...extra } });
      expect(res.status).toBe(202);
      return res.body.task_id as string;
    };
    const N = 4;
    const M = 2;
    for (let i = 0; i < N; i++) await launch('ops.ok', { company_id: `c${i}` });
    await launch('ops.ok', {}); // tenant-less
    for (let i = 0; i < M; i++) await launch('ops.fail', { company_id: '73' });
    await launch('ops.ok', { company_id: '73' }, { countdown: 3600, queue: 'later' }); // waits in its queue

    await eventually(async () => {
      const s = (await http(`${url}/api/tasks/statistics`)).body;
      return s.by_state.SUCCESS === N + 1 && s.by_state.FAILURE === M && s.by_state.STARTED === 0 && s.by_state.RETRY === 0;
    }, 20_000, 50);
    const stats = (await http(`${url}/api/tasks/statistics`)).body;
    // Durations and retries come from committed events, which reach the feed a moment after.
    const samples = await eventually(async () => {
      const s = await scrape(url);
      return total(s, 'taskyard_task_duration_seconds_count') === N + 1 + M ? s : null;
    }, 10_000, 50);

    // Gauges: every state matches the statistics (and so the list), split by tenant class.
    for (const [state, count] of Object.entries(stats.by_state as Record<string, number>)) {
      expect(total(samples, 'taskyard_tasks', { state }), state).toBe(count);
    }
    const listed = (await http(`${url}/api/tasks?limit=500`)).body.tasks as Array<{ state: string }>;
    expect(total(samples, 'taskyard_tasks')).toBe(listed.length);
    expect(total(samples, 'taskyard_tasks', { name: 'ops.ok', state: 'SUCCESS', tenant_class: 'tenant' })).toBe(N);
    expect(total(samples, 'taskyard_tasks', { name: 'ops.ok', state: 'SUCCESS', tenant_class: 'none' })).toBe(1);
    expect(total(samples, 'taskyard_tasks', { name: 'ops.ok', state: 'PENDING', tenant_class: 'tenant' })).toBe(1);
    expect(total(samples, 'taskyard_tasks', { name: 'ops.fail', state: 'FAILURE', tenant_class: 'tenant' })).toBe(M);
    // No label holds a tenant id.
    expect(samples.filter((s) => s.name === 'taskyard_tasks').every((s) => ['tenant', 'none'].includes(s.labels.tenant_class!))).toBe(true);

    expect(total(samples, 'taskyard_queue_depth', { queue: 'later' })).toBe(1);
    expect(total(samples, 'taskyard_queue_depth')).toBe(stats.queue_depth.pending + stats.queue_depth.delayed + stats.queue_depth.retry);
    expect(total(samples, 'taskyard_tasks_running')).toBe(0);
    expect(total(samples, 'taskyard_process_tasks_running')).toBe(0);

    // The histogram counts every finished run once, by final state; each failure retried once.
    expect(total(samples, 'taskyard_task_duration_seconds_count', { name: 'ops.ok', state: 'SUCCESS' })).toBe(N + 1);
    expect(total(samples, 'taskyard_task_duration_seconds_count', { name: 'ops.fail', state: 'FAILURE' })).toBe(M);
    expect(total(samples, 'taskyard_task_duration_seconds_bucket', { name: 'ops.ok', state: 'SUCCESS', le: '+Inf' })).toBe(N + 1);
    expect(total(samples, 'taskyard_task_retries_total', { name: 'ops.fail' })).toBe(M);
    expect(total(samples, 'taskyard_webhook_delivery_failures_total')).toBe(0);

    // Requests, by route pattern (not the raw URL) and status class; and the process's own metrics.
    expect(total(samples, 'taskyard_http_request_duration_seconds_count', { route: '/api/tasks', method: 'POST', status_class: '2xx' })).toBe(N + 1 + M + 1);
    expect(samples.some((s) => s.name === 'taskyard_http_request_duration_seconds_count' && s.labels.route!.includes('?'))).toBe(false);
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  }, 40_000);
});

describe('metrics while tasks run', () => {
  it('running gauges count runs in flight, here and in the ledger', async () => {
    const { url } = await startServer({ tasks }).then((s) => (cleanups.push(s.close), s));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await http(`${url}/api/tasks`, { body: { task_type: 'ops.ok', params: { ms: 1500 } } })).body.task_id);
    await eventually(async () => (await http(`${url}/api/tasks/statistics`)).body.by_state.STARTED === 3);
    for (const id of ids) expect((await http(`${url}/api/tasks/${id}`)).status).toBe(200);
    expect((await http(`${url}/no/such/route`)).status).toBe(404);
    const samples = await scrape(url);
    // Latency by route pattern: one series for all ids, one for every unknown path.
    expect(total(samples, 'taskyard_http_request_duration_seconds_count', { route: '/api/tasks/:task_id', method: 'GET', status_class: '2xx' })).toBe(3);
    expect(total(samples, 'taskyard_http_request_duration_seconds_count', { route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(samples.some((s) => ids.some((id) => Object.values(s.labels).some((v) => v.includes(id))))).toBe(false);
    expect(total(samples, 'taskyard_tasks_running')).toBe(3);
    expect(total(samples, 'taskyard_process_tasks_running')).toBe(3);
    expect(total(samples, 'taskyard_tasks', { state: 'STARTED', name: 'ops.ok', tenant_class: 'none' })).toBe(3);
  });
});

describe('webhook metrics', () => {
  it('count failed delivery attempts, and the deliveries that gave up', async () => {
    // A receiver that is gone: a port that was free a moment ago.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const delivery = createWebhookTask({ retry: { attempts: 2, delay: 10, maxDelay: 10, jitter: 0 } });
    const { url, yard } = await startServer({ tasks: [ok, delivery] }).then((s) => (cleanups.push(s.close), s));
    cleanups.push(installWebhooks(yard, { secret: 'whsec_ops_0123456789abcdef', url: `http://127.0.0.1:${port}/hook`, events: ['succeeded'] }));
    await http(`${url}/api/tasks`, { body: { task_type: 'ops.ok', params: {} } });
    await http(`${url}/api/tasks`, { body: { task_type: 'ops.ok', params: {} } });
    // Two deliveries, two attempts each: two failures that were retried, two that gave up.
    const samples = await eventually(async () => {
      const s = await scrape(url);
      return total(s, 'taskyard_webhook_delivery_failures_total', { final: 'true' }) === 2 ? s : null;
    }, 10_000, 50);
    expect(total(samples, 'taskyard_webhook_delivery_failures_total', { final: 'false' })).toBe(2);
    expect(total(samples, 'taskyard_task_retries_total', { name: 'taskyard.webhook' })).toBe(2);
    expect(total(samples, 'taskyard_tasks', { name: 'taskyard.webhook', state: 'FAILURE' })).toBe(2);
  });
});

const ADMIN: ApiKey = { key: 'ops-admin-key-0123456789', role: 'admin', tenants: '*' };
const OPERATOR: ApiKey = { key: 'ops-operator-key-012345', role: 'operator', tenants: '*' };
const VIEWER: ApiKey = { key: 'ops-viewer-key-01234567', role: 'viewer', tenants: ['73'] };
const TENANT_ADMIN: ApiKey = { key: 'ops-tenant-admin-key-0123', role: 'admin', tenants: ['73'] };
const bearer = (key: ApiKey) => ({ authorization: `Bearer ${key.key}` });

describe('access', () => {
  it('metrics are for admin keys; probes need no key', async () => {
    const { url } = await startServer({ tasks, apiKeys: [ADMIN, OPERATOR, VIEWER, TENANT_ADMIN] }).then((s) => (cleanups.push(s.close), s));
    expect((await http(`${url}/metrics`)).status).toBe(401);
    expect((await http(`${url}/metrics`, { headers: bearer(VIEWER) })).status).toBe(403);
    const refused = await http(`${url}/metrics`, { headers: bearer(OPERATOR) });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toMatch(/needs the admin role/);
    expect((await http(`${url}/metrics`, { headers: bearer(ADMIN) })).status).toBe(200);
    // Metrics count every tenant's runs: not for an admin of some tenants only.
    const scoped = await http(`${url}/metrics`, { headers: bearer(TENANT_ADMIN) });
    expect(scoped).toMatchObject({ status: 403, body: { detail: 'Metrics cover every tenant; this key is limited to some' } });
    expect(await http(`${url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await http(`${url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready', checks: { store: 'ok' } } });
  });

  it('TASKYARD_METRICS=off: no /metrics at all', async () => {
    const { yard } = await startYard({ tasks }).then((y) => (cleanups.push(y.close), y));
    const app = await buildApp({ yard, metrics: false });
    cleanups.push(() => app.close());
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('readiness', () => {
  it('a PostgreSQL ledger that goes away: 503 naming the store, and ready again when it is back', async () => {
    const proxy = new TcpProxy(TEST_DATABASE_URL);
    await proxy.start();
    const schema = freshSchema();
    const { url } = await startServer({ tasks, store: new PostgresStore({ connectionString: proxy.url, schema, poolSize: 2 }) });
    cleanups.push(() => dropSchema(schema), () => proxy.stop());
    expect(await http(`${url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready', checks: { store: 'ok' } } });

    await proxy.stop();
    const down = await http(`${url}/readyz`);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(down.body.status).toBe('unavailable');
    expect(down.body.checks.store).toMatch(/^down: /);
    expect(down.body.detail).toMatch(/^Not ready: store is down/);
    // The process itself is fine: liveness must not get it restarted for the database's sake.
    expect(await http(`${url}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });

    await proxy.start();
    await eventually(async () => (await http(`${url}/readyz`)).status === 200, 10_000, 100);
  });

  it('Redis that goes away under a BullMQ engine: 503 naming Redis, ready again when it is back', async () => {
    const proxy = new TcpProxy(REDIS_URL);
    await proxy.start();
    const queue = `tyq-${randomBytes(5).toString('hex')}`;
    const { url } = await startServer({ tasks, engine: new BullMQEngine({ redisUrl: proxy.url, queue, worker: false, connectTimeoutMs: 2000 }) });
    cleanups.push(() => proxy.stop());
    expect(await http(`${url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready', checks: { store: 'ok', redis: 'ok' } } });

    await proxy.stop();
    const down = await eventually(async () => {
      const res = await http(`${url}/readyz`);
      return res.status === 503 ? res : null;
    }, 5000);
    expect(down.body).toMatchObject({ status: 'unavailable', checks: { store: 'ok' } });
    expect(down.body.checks.redis).toMatch(/^down: /);
    expect(down.body.detail).toMatch(/redis is down/);

    await proxy.start();
    await eventually(async () => (await http(`${url}/readyz`)).status === 200, 10_000, 100);
  }, 20_000);

  it('answers 503 while draining, and the drain lets the running task finish', async () => {
    const { url, yard } = await startServer({ tasks, shutdownGraceMs: 5000 }).then((s) => (cleanups.push(s.close), s));
    const id = (await http(`${url}/api/tasks`, { body: { task_type: 'ops.ok', params: { ms: 600 } } })).body.task_id;
    await eventually(async () => (await http(`${url}/api/tasks/${id}`)).body.state === 'STARTED');
    const drained = yard.drain();
    const res = await http(`${url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'draining', detail: 'Shutting down: finishing running tasks' });
    await drained;
    expect((await http(`${url}/api/tasks/${id}`)).body.state).toBe('SUCCESS');
  });

  it('probes are never logged at info', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const { yard } = await startYard({ tasks }).then((y) => (cleanups.push(y.close), y));
    const app = await buildApp({ yard, logger: pino({ level: 'info' }, sink) });
    cleanups.push(() => app.close());
    for (const url of ['/healthz', '/readyz', '/health', '/metrics']) expect((await app.inject({ url })).statusCode).toBe(200);
    expect(lines).toEqual([]);
    // The app's logger is on: an ordinary request is logged.
    await app.inject({ url: '/api/tasks' });
    expect(lines.some((l) => (l.req as { url?: string } | undefined)?.url === '/api/tasks')).toBe(true);
  });
});

describe('shutdown', () => {
  it('a launch while a BullMQ API process drains stays in the ledger, without reopening Redis', async () => {
    const queue = `tyq-${randomBytes(5).toString('hex')}`;
    const redis = new Redis(REDIS_URL);
    cleanups.push(async () => {
      const keys = await redis.keys(`${queue}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });
    const { url, yard } = await startServer({ tasks, engine: new BullMQEngine({ redisUrl: REDIS_URL, queue, worker: false }) }).then((s) => (cleanups.push(s.close), s));
    await yard.drain();
    const launched = await http(`${url}/api/tasks`, { body: { task_type: 'ops.ok', params: {} } });
    expect(launched.status).toBe(202);
    expect((await http(`${url}/api/tasks/${launched.body.task_id}`)).body.state).toBe('PENDING');
    // The sweeper of the next process to lead hands it to Redis.
    // BullMQ's queue metadata is all there is: no job, no waiting list.
    expect((await redis.keys(`${queue}:*`)).filter((key) => !key.endsWith(':meta'))).toEqual([]);
  });
});

describe('rate limit', () => {
  it('per API key: 429 with Retry-After and the usual error body, other keys unaffected, probes exempt', async () => {
    const { yard } = await startYard({ tasks }).then((y) => (cleanups.push(y.close), y));
    const server = await serve({ yard, host: '127.0.0.1', port: 0, apiKeys: [ADMIN, OPERATOR], rateLimit: { max: 3, windowMs: 60_000 }, handleSignals: false });
    cleanups.push(() => server.app.close());
    const { url } = server;
    for (let i = 0; i < 3; i++) expect((await http(`${url}/api/tasks`, { headers: bearer(OPERATOR) })).status).toBe(200);
    const limited = await http(`${url}/api/tasks`, { headers: bearer(OPERATOR) });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(limited.body).toEqual({ detail: expect.stringMatching(/^Rate limit exceeded: 3 requests per minute; retry in /) });
    // Another key has its own budget; probes and metrics are not counted.
    expect((await http(`${url}/api/tasks`, { headers: bearer(ADMIN) })).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      expect((await http(`${url}/healthz`, { headers: bearer(OPERATOR) })).status).toBe(200);
      expect((await http(`${url}/readyz`)).status).toBe(200);
      expect((await http(`${url}/metrics`, { headers: bearer(ADMIN) })).status).toBe(200);
    }
    expect((await http(`${url}/api/tasks`, { headers: bearer(ADMIN) })).status).toBe(200);
  });

  it('requests without a valid key count against the client IP, so keys cannot be guessed at full speed', async () => {
    const { yard } = await startYard({ tasks }).then((y) => (cleanups.push(y.close), y));
    const server = await serve({ yard, host: '127.0.0.1', port: 0, apiKeys: [ADMIN], rateLimit: { max: 2, windowMs: 60_000 }, handleSignals: false });
    cleanups.push(() => server.app.close());
    const guess = (n: number) => http(`${server.url}/api/tasks`, { headers: { authorization: `Bearer wrong-guess-${n}-0123456789` } });
    expect((await guess(1)).status).toBe(401);
    expect((await http(`${server.url}/api/tasks`)).status).toBe(401); // no key: the same IP budget
    const third = await guess(3);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).not.toBeNull();
    // The real key is a budget of its own.
    expect((await http(`${server.url}/api/tasks`, { headers: bearer(ADMIN) })).status).toBe(200);
  });

  it('without keys (loopback) the limit is per client IP', async () => {
    const { yard } = await startYard({ tasks }).then((y) => (cleanups.push(y.close), y));
    const server = await serve({ yard, host: '127.0.0.1', port: 0, apiKeys: [], rateLimit: { max: 2, windowMs: 1000 }, handleSignals: false });
    cleanups.push(() => server.app.close());
    expect((await http(`${server.url}/api/tasks`)).status).toBe(200);
    expect((await http(`${server.url}/api/tasks`)).status).toBe(200);
    expect((await http(`${server.url}/api/tasks`)).status).toBe(429);
    // A new window, a new budget.
    await eventually(async () => (await http(`${server.url}/api/tasks`)).status === 200, 3000, 200);
  });
});

describe('log lines', () => {
  it('every line about a task carries its task_id: lifecycle, ctx.log, hooks', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const chatty = defineTask({
      name: 'ops.chatty',
      params: z.object({ company_id: z.string() }),
      run(p, ctx) {
        ctx.log(`syncing ${p.company_id}`, { step: 1 });
        return 'ok';
      },
    });
    const { yard } = await startYard({
      tasks: [chatty, flaky],
      logger: pino({ level: 'info' }, sink),
      hooks: {
        onSucceeded: () => {
          throw new Error('hook bug');
        },
      },
    }).then((y) => (cleanups.push(y.close), y));
    const a = await yard.submit('ops.chatty', { company_id: '73' });
    const b = await yard.submit('ops.fail', { company_id: '73' });
    await yard.waitFor(a, 5000);
    await yard.waitFor(b, 5000);
    await new Promise((r) => setTimeout(r, 50));

    const about = (id: string) => lines.filter((l) => l.task_id === id);
    expect(about(a).map((l) => l.msg)).toEqual(['task launched', 'task started', 'syncing 73', 'task succeeded', 'hook failed']);
    expect(about(a).find((l) => l.msg === 'syncing 73')).toMatchObject({ name: 'ops.chatty', tenant: '73', data: { step: 1 }, level: 30 });
    expect(about(a).find((l) => l.msg === 'hook failed')).toMatchObject({ hook: 'onSucceeded', name: 'ops.chatty', err: { message: 'hook bug' } });
    expect(about(b).map((l) => l.msg)).toEqual(['task launched', 'task started', 'task will retry', 'task started', 'task failed']);
    // No line names a task without saying which run.
    const taskLines = lines.filter((l) => typeof l.msg === 'string' && /^(task |hook )/.test(l.msg) || l.name === 'ops.chatty' || l.name === 'ops.fail');
    expect(taskLines.length).toBe(10);
    for (const line of taskLines) expect(line.task_id, JSON.stringify(line)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
