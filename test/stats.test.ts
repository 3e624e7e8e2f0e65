/**
 * Statistics against a ledger whose every number is known: counts by state, category and name,
 * run durations (p50/p95), throughput and queue depth by state and queue, per tenant scope,
 * through the library and `GET /api/tasks/statistics`. Then the same against real runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import type { TaskState } from '../src/core/states.js';
import type { TaskChange } from '../src/store/types.js';
import type { Taskyard } from '../src/taskyard.js';
import { eventually, http, startServer, startYard } from './helpers.js';

const ADMIN = 'stats-admin-key-0123456789';
const TENANT_73 = 'stats-tenant-73-key-012345';

const params = z.object({ company_id: z.string() });
const syncDocs = defineTask({ name: 'sync.docs', params, run: () => null });
const buildReport = defineTask({ name: 'report.build', params, queue: 'heavy', run: () => null });

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Every state at zero, with the given counts. */
const states = (counts: Partial<Record<TaskState, number>>) => ({ PENDING: 0, STARTED: 0, RETRY: 0, SUCCESS: 0, FAILURE: 0, REVOKED: 0, ...counts });

/**
 * Builds runs in exact states and times straight through the store, as an engine would: launch,
 * claim, then an outcome whose start and finish times are chosen. The yard does not execute, so
 * nothing moves afterwards.
 */
function ledgerBuilder(yard: Taskyard) {
  const launch = async (name: string, company_id: string, countdown?: number) => {
    const [record] = await yard.launch([{ name, params: { company_id }, countdown }]);
    return record!.id;
  };
  const claim = async (id: string) => {
    // Only this run is due and waiting while it is built, so it is the one claimed.
    const claimed = await yard.store.claim({ limit: 1, now: Date.now(), worker: 'stats-builder' });
    expect(claimed.map((r) => r.id)).toEqual([id]);
  };
  const apply = async (change: TaskChange) => {
    const [event] = await yard.store.apply([change]);
    expect(event, JSON.stringify(change)).not.toBeNull();
  };
  return {
    async finished(name: string, company: string, state: 'SUCCESS' | 'FAILURE', startedAt: number, finishedAt: number) {
      const id = await launch(name, company);
      await claim(id);
      await apply({ id, to: state, from: ['STARTED'], patch: { startedAt, finishedAt }, event: state === 'SUCCESS' ? 'succeeded' : 'failed' });
    },
    async running(name: string, company: string) {
      await claim(await launch(name, company));
    },
    async retrying(name: string, company: string, runAt: number) {
      const id = await launch(name, company);
      await claim(id);
      await apply({ id, to: 'RETRY', from: ['STARTED'], patch: { runAt, error: 'will retry' }, event: 'retry' });
    },
    async revokedBeforeStart(name: string, company: string, finishedAt: number) {
      const id = await launch(name, company, 3600);
      await apply({ id, to: 'REVOKED', from: ['PENDING'], patch: { finishedAt }, event: 'revoked' });
    },
    async waiting(name: string, company: string, countdown?: number) {
      await launch(name, company, countdown);
    },
  };
}

describe('statistics of a known ledger', () => {
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    server = await startServer({
      tasks: [syncDocs, buildReport],
      execute: false,
      apiKeys: [
        { key: ADMIN, role: 'admin', tenants: '*' },
        { key: TENANT_73, role: 'viewer', tenants: ['73'] },
      ],
    });
    const build = ledgerBuilder(server.yard);
    const now = Date.now();
    // Tenant 73: 21 successes lasting 100, 200, ... 2100 ms; the first five ended three minutes
    // ago, the other sixteen within the last minute.
    for (let k = 1; k <= 21; k++) {
      const finishedAt = k <= 5 ? now - 3 * MINUTE : now - 5 * SECOND;
      await build.finished('sync.docs', '73', 'SUCCESS', finishedAt - 100 * k, finishedAt);
    }
    // Outside the last hour: counted by state, but not in durations or throughput.
    await build.finished('sync.docs', '73', 'SUCCESS', now - 2 * HOUR - 1000 * SECOND, now - 2 * HOUR);
    await build.revokedBeforeStart('report.build', '73', now - 2 * HOUR);
    await build.running('report.build', '73');
    await build.retrying('report.build', '73', now + MINUTE);
    // Tenant 4: a 50 ms failure within the minute, a 3 s success three minutes ago, a retry.
    await build.finished('report.build', '4', 'FAILURE', now - 5 * SECOND - 50, now - 5 * SECOND);
    await build.finished('report.build', '4', 'SUCCESS', now - 3 * MINUTE - 3 * SECOND, now - 3 * MINUTE);
    await build.retrying('sync.docs', '4', now + MINUTE);
    // Waiting runs last, so the claims above could only take the run each one made.
    for (let i = 0; i < 3; i++) await build.waiting('sync.docs', '73');
    await build.waiting('sync.docs', '73', 3600);
    await build.waiting('report.build', '73', 3600);
    for (let i = 0; i < 2; i++) await build.waiting('report.build', '4');
  });

  afterAll(async () => {
    await server?.close();
  });

  it('counts, durations, throughput and queue depth of one tenant, through the library', async () => {
    const stats = await server.yard.stats(['73']);
    const sync = states({ SUCCESS: 22, PENDING: 4 });
    const report = states({ REVOKED: 1, STARTED: 1, RETRY: 1, PENDING: 1 });
    expect(stats.byState).toEqual(states({ SUCCESS: 22, REVOKED: 1, STARTED: 1, RETRY: 1, PENDING: 5 }));
    expect(stats.byName).toEqual({ 'sync.docs': sync, 'report.build': report });
    expect(stats.byCategory).toEqual({ sync, report });
    // Nearest rank over 100..2100 ms: the 11th and the 20th of 21.
    expect(stats.durations).toEqual({ p50: 1100, p95: 2000, samples: 21 });
    expect(stats.throughput).toEqual({ lastMinute: 16, lastHour: 21, perSecond: 0.27 });
    expect(stats.queueDepth).toEqual({ pending: 3, delayed: 2, retry: 1, byQueue: { default: 4, heavy: 2 } });
  });

  it('counts every tenant for an unscoped caller, and nothing for an empty scope', async () => {
    const stats = await server.yard.stats('*');
    expect(stats.byState).toEqual(states({ SUCCESS: 23, FAILURE: 1, REVOKED: 1, STARTED: 1, RETRY: 2, PENDING: 7 }));
    expect(stats.byName['report.build']).toEqual(states({ SUCCESS: 1, FAILURE: 1, REVOKED: 1, STARTED: 1, RETRY: 1, PENDING: 3 }));
    // 50, 100..2100, 3000 ms: the 12th and the 22nd of 23.
    expect(stats.durations).toEqual({ p50: 1100, p95: 2100, samples: 23 });
    expect(stats.throughput).toEqual({ lastMinute: 17, lastHour: 23, perSecond: 0.28 });
    expect(stats.queueDepth).toEqual({ pending: 5, delayed: 2, retry: 2, byQueue: { default: 5, heavy: 4 } });

    const tenant4 = await server.yard.stats(['4']);
    expect(tenant4.durations.samples).toBe(2);
    expect(tenant4.queueDepth).toEqual({ pending: 2, delayed: 0, retry: 1, byQueue: { default: 1, heavy: 2 } });

    const none = await server.yard.stats([]);
    expect(Object.values(none.byState).every((n) => n === 0)).toBe(true);
    expect(none.durations).toEqual({ p50: null, p95: null, samples: 0 });
  });

  it('answers the same numbers over HTTP, durations in seconds, per key', async () => {
    const all = await http(`${server.url}/api/tasks/statistics/`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({
      total: 35,
      durations: { p50_seconds: 1.1, p95_seconds: 2.1, samples: 23 },
      throughput: { last_minute: 17, last_hour: 23, per_second: 0.28 },
      queue_depth: { pending: 5, delayed: 2, retry: 2, by_queue: { default: 5, heavy: 4 } },
    });
    expect(all.body.by_category.report).toEqual(states({ SUCCESS: 1, FAILURE: 1, REVOKED: 1, STARTED: 1, RETRY: 1, PENDING: 3 }));

    const mine = await http(`${server.url}/api/tasks/statistics/`, { headers: { authorization: `Bearer ${TENANT_73}` } });
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({
      total: 30,
      by_state: states({ SUCCESS: 22, REVOKED: 1, STARTED: 1, RETRY: 1, PENDING: 5 }),
      durations: { p50_seconds: 1.1, p95_seconds: 2, samples: 21 },
      throughput: { last_minute: 16, last_hour: 21, per_second: 0.27 },
      queue_depth: { pending: 3, delayed: 2, retry: 1, by_queue: { default: 4, heavy: 2 } },
    });
  });
});

describe('statistics of real runs', () => {
  it('measures the durations the runs really took, and what waits in which queue', async () => {
    const sleeper = defineTask({
      name: 'timed.sleep',
      params: z.object({ ms: z.number().int() }),
      run: ({ ms }) => new Promise((resolve) => setTimeout(resolve, ms)),
    });
    const failsOnce = defineTask({
      name: 'timed.fails',
      queue: 'slow',
      retry: { attempts: 2, delay: '1h', jitter: 0 },
      run: () => {
        throw new Error('try again in an hour');
      },
    });
    const { yard, close } = await startYard({ tasks: [sleeper, failsOnce] });
    try {
      // Eleven runs at once, lasting 200, 400, ... 2200 ms.
      const ids = await yard.submitMany(Array.from({ length: 11 }, (_, i) => ({ name: 'timed.sleep', params: { ms: 200 * (i + 1) } })));
      const retrying = await yard.submit('timed.fails');
      await yard.submit('timed.sleep', { ms: 1 }, { countdown: 3600 });
      await yard.submit('timed.sleep', { ms: 1 }, { countdown: 3600, queue: 'slow' });
      await Promise.all(ids.map((id) => yard.waitFor(id, 10_000)));
      await eventually(async () => (await yard.get(retrying)).state === 'RETRY');

      const stats = await yard.stats();
      expect(stats.byName['timed.sleep']).toEqual(states({ SUCCESS: 11, PENDING: 2 }));
      expect(stats.durations.samples).toBe(11);
      // The 6th and the 11th of 11 runs: 1200 and 2200 ms, plus claim and commit latency.
      const slack = 150; // under the 200 ms between runs, so the wrong rank cannot pass
      expect(stats.durations.p50).toBeGreaterThanOrEqual(1200);
      expect(stats.durations.p50).toBeLessThan(1200 + slack);
      expect(stats.durations.p95).toBeGreaterThanOrEqual(2200);
      expect(stats.durations.p95).toBeLessThan(2200 + slack);
      expect(stats.throughput).toMatchObject({ lastMinute: 11, lastHour: 11 });
      expect(stats.queueDepth).toEqual({ pending: 0, delayed: 2, retry: 1, byQueue: { default: 1, slow: 2 } });
    } finally {
      await close();
    }
  });
});
