/**
 * Fairness and limits on real ledgers (a SQLite file, a PostgreSQL schema): one tenant flooding a
 * task type does not hold back another (start order measured, and starved with fairness off),
 * per-tenant concurrency holds across two yards sharing one ledger, a rate limit holds per
 * sliding window, and bad limits are refused when the task is defined.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, type AnyTaskDefinition } from '../src/core/definition.js';
import type { TaskEvent } from '../src/core/events.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskStore } from '../src/store/types.js';
import type { Taskyard } from '../src/taskyard.js';
import { startCluster } from './bullmq-cluster.js';
import { dropSchema, eventually, freshSchema, startYard, tempDir, TEST_DATABASE_URL } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const company = z.object({ company_id: z.string() });

interface Ledger {
  kind: string;
  /** A store on the test's ledger; every call opens another connection to the same one. */
  open(): TaskStore;
  dispose(): Promise<void>;
}

const ledgers: Array<{ kind: string; make: () => Ledger }> = [
  {
    kind: 'sqlite',
    make: () => {
      const temp = tempDir();
      return { kind: 'sqlite', open: () => new SqliteStore({ filename: join(temp.dir, 'taskyard.db') }), dispose: async () => temp.cleanup() };
    },
  },
  {
    kind: 'postgres',
    make: () => {
      const schema = freshSchema();
      return { kind: 'postgres', open: () => new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 4 }), dispose: () => dropSchema(schema) };
    },
  },
];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function yardOn(ledger: Ledger, tasks: AnyTaskDefinition[], engineOptions: { concurrency: number; fair?: boolean }): Promise<Taskyard> {
  const { yard, close } = await startYard({ tasks, store: ledger.open(), engineOptions: { pollIntervalMs: 20, ...engineOptions }, dir: '.' });
  cleanups.push(close);
  return yard;
}

function useLedger(make: () => Ledger): Ledger {
  const ledger = make();
  cleanups.push(() => ledger.dispose());
  return ledger;
}

describe.each(ledgers)('on $kind', ({ make }) => {
  /**
   * Tenant A launches `count` syncs, then tenant B launches 10, with 4 slots. Returns, for B's runs,
   * how many runs started between B's launch and B's last start (its delay in starts), and the
   * delay in milliseconds.
   */
  async function flood(fair: boolean, count: number): Promise<{ startsUntilBDone: number; msUntilBDone: number; bFirst: number }> {
    const sync = defineTask({ name: 'fair.sync', params: company, retry: false, run: () => null });
    const ledger = useLedger(make);
    const yard = await yardOn(ledger, [sync], { concurrency: 4, fair });
    const starts: TaskEvent[] = [];
    yard.on('started', (event) => void starts.push(event));
    await yard.submitMany(Array.from({ length: count }, () => ({ name: 'fair.sync', params: { company_id: 'A' } })));
    const before = starts.length;
    const t0 = Date.now();
    const bIds = await yard.submitMany(Array.from({ length: 10 }, () => ({ name: 'fair.sync', params: { company_id: 'B' } })));
    for (const id of bIds) await yard.waitFor(id, 60_000);
    const msUntilBDone = Date.now() - t0;
    const bPositions = starts.map((e, i) => (e.tenantId === 'B' ? i : -1)).filter((i) => i >= 0);
    expect(bPositions).toHaveLength(10);
    return { startsUntilBDone: bPositions.at(-1)! + 1 - before, msUntilBDone, bFirst: bPositions[0]! - before };
  }

  it('fair claims: B\'s 10 runs start within a bounded number of starts while A floods 5,000', async () => {
    const { startsUntilBDone, msUntilBDone, bFirst } = await flood(true, 5000);
    console.log(`fair: B's 10 runs all started within ${startsUntilBDone} starts (first after ${bFirst}), ${msUntilBDone} ms after B's launch`);
    // Round-robin: B's runs alternate with A's (10 of each), plus the slots already running.
    expect(startsUntilBDone).toBeLessThanOrEqual(10 * 2 + 8);
  }, 90_000);

  it('without fairness the same flood starves B until A\'s backlog is gone (the test above could fail)', async () => {
    // A smaller flood, to keep the test quick: B waits for all of it.
    const { startsUntilBDone, bFirst } = await flood(false, 1000);
    console.log(`unfair: B's first run started after ${bFirst} starts, its last after ${startsUntilBDone}`);
    expect(bFirst).toBeGreaterThan(900);
  }, 90_000);

  it('fairness keeps priority first: a higher-priority run of the flooding tenant still goes first', async () => {
    const gate = { open: false };
    const sync = defineTask({ name: 'fair.prio', params: company, retry: false, run: async () => void (await eventually(() => gate.open)) });
    const ledger = useLedger(make);
    const yard = await yardOn(ledger, [sync], { concurrency: 1 });
    const order: string[] = [];
    yard.on('started', (e) => void order.push(`${e.tenantId}`));
    // The first run holds the one slot while the rest queue up behind it.
    const first = await yard.submit('fair.prio', { company_id: 'X' });
    await eventually(async () => (await yard.get(first)).state === 'STARTED');
    await yard.submitMany([
      ...Array.from({ length: 3 }, () => ({ name: 'fair.prio', params: { company_id: 'A' } })),
      { name: 'fair.prio', params: { company_id: 'B' } },
      { name: 'fair.prio', params: { company_id: 'A' }, priority: 5 },
    ]);
    gate.open = true;
    await eventually(() => order.length === 6);
    // Then turns: B was never served, A just was; A's other runs follow.
    expect(order).toEqual(['X', 'A', 'B', 'A', 'A', 'A']);
  }, 30_000);

  it('claims smaller than the number of tenants take turns: every tenant once before any twice', async () => {
    const sync = defineTask({ name: 'fair.turns', params: company, retry: false, run: () => null });
    const ledger = useLedger(make);
    const { yard, close } = await startYard({ tasks: [sync], store: ledger.open(), execute: false, dir: '.' });
    cleanups.push(close);
    // Launched tenant by tenant: by age alone, t0's three runs would go first.
    for (const tenant of ['t0', 't1', 't2', 't3', 't4']) {
      await yard.submitMany(Array.from({ length: 3 }, () => ({ name: 'fair.turns', params: { company_id: tenant } })));
    }
    const order: string[] = [];
    for (let i = 0; i < 8; i++) {
      const claimed = await yard.store.claim({ limit: 2, now: Date.now(), worker: 'test', fair: true });
      order.push(...claimed.map((r) => r.tenantId!));
    }
    expect(order.slice(0, 5).sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
    expect(order.slice(5, 10).sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
    expect(order.slice(10).sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
  }, 30_000);

  it('tenantConcurrency holds across two yards sharing one ledger, and other tenants still run', async () => {
    const running = new Map<string, number>();
    const peak = new Map<string, number>();
    const work = defineTask({
      name: 'fair.limited',
      params: company,
      tenantConcurrency: 2,
      retry: false,
      run: async (p) => {
        const now = (running.get(p.company_id) ?? 0) + 1;
        running.set(p.company_id, now);
        peak.set(p.company_id, Math.max(peak.get(p.company_id) ?? 0, now));
        await sleep(40);
        running.set(p.company_id, running.get(p.company_id)! - 1);
      },
    });
    const ledger = useLedger(make);
    const one = await yardOn(ledger, [work], { concurrency: 6 });
    const two = await yardOn(ledger, [work], { concurrency: 6 });
    const ids = [
      ...(await one.submitMany(Array.from({ length: 12 }, () => ({ name: 'fair.limited', params: { company_id: 'X' } })))),
      ...(await two.submitMany(Array.from({ length: 12 }, () => ({ name: 'fair.limited', params: { company_id: 'Y' } })))),
    ];
    for (const id of ids) expect((await one.waitFor(id, 30_000)).state).toBe('SUCCESS');
    expect(peak.get('X')).toBe(2);
    expect(peak.get('Y')).toBe(2);
  }, 60_000);

  it('rateLimit: starts of a type never exceed max in any window, across two yards', async () => {
    const limited = defineTask({ name: 'fair.rated', params: company, rateLimit: { max: 4, duration: '400ms' }, retry: false, run: () => null });
    const ledger = useLedger(make);
    const one = await yardOn(ledger, [limited], { concurrency: 8 });
    const two = await yardOn(ledger, [limited], { concurrency: 8 });
    const t0 = Date.now();
    const ids = [
      ...(await one.submitMany(Array.from({ length: 8 }, (_, i) => ({ name: 'fair.rated', params: { company_id: `c${i}` } })))),
      ...(await two.submitMany(Array.from({ length: 8 }, (_, i) => ({ name: 'fair.rated', params: { company_id: `d${i}` } })))),
    ];
    const starts: number[] = [];
    for (const id of ids) {
      const record = await one.waitFor(id, 30_000);
      expect(record.state).toBe('SUCCESS');
      starts.push(record.startedAt!);
    }
    starts.sort((a, b) => a - b);
    for (const start of starts) expect(starts.filter((s) => s > start - 400 && s <= start).length).toBeLessThanOrEqual(4);
    // 16 starts at 4 per 400 ms take at least three more windows after the first.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3 * 400);
  }, 60_000);
});

describe('bad limits are refused when the task is defined', () => {
  const define = (options: object) => () => defineTask({ name: 'fair.bad', run: () => null, ...options });
  it.each([
    [{ tenantConcurrency: 0 }, /tenantConcurrency must be an integer >= 1, got 0/],
    [{ tenantConcurrency: 1.5 }, /tenantConcurrency must be an integer >= 1/],
    [{ tenantConcurrency: '2' }, /tenantConcurrency must be an integer >= 1, got "2"/],
    [{ concurrency: -1 }, /concurrency must be an integer >= 1/],
    [{ rateLimit: { max: 0, duration: '1s' } }, /rateLimit.max must be an integer >= 1/],
    [{ rateLimit: { duration: '1s' } }, /rateLimit.max is required/],
    [{ rateLimit: { max: 5, duration: 'soon' } }, /rateLimit.duration: Invalid duration/],
    [{ rateLimit: { max: 5, duration: 0 } }, /rateLimit.duration must be at least 1ms/],
    [{ rateLimit: 10 }, /rateLimit must be \{ max, duration \}/],
  ])('%j', (options, message) => {
    expect(define(options)).toThrow(message);
  });

  it('good limits are kept, the duration in milliseconds', () => {
    const ok = defineTask({ name: 'fair.ok', tenantConcurrency: 2, rateLimit: { max: 10, duration: '1m' }, run: () => null });
    expect(ok.tenantConcurrency).toBe(2);
    expect(ok.rateLimit).toEqual({ max: 10, durationMs: 60_000 });
  });
});

describe('on BullMQ (real Redis, PostgreSQL ledger)', () => {
  /**
   * Tenant A launches `count` syncs, then B launches 10, all dispatched before a worker (4 slots)
   * starts; the start order is read from the ledger's event log.
   */
  async function flood(fair: boolean, count: number): Promise<{ bFirst: number; bLast: number }> {
    const sync = defineTask({ name: 'fair.bull', params: company, retry: false, run: () => null });
    const cluster = await startCluster({ tasks: [sync], workers: 0, apiEngine: { fair } });
    cleanups.push(() => cluster.close());
    await cluster.api.submitMany(Array.from({ length: count }, () => ({ name: 'fair.bull', params: { company_id: 'A' } })));
    const bIds = await cluster.api.submitMany(Array.from({ length: 10 }, () => ({ name: 'fair.bull', params: { company_id: 'B' } })));
    const worker = await cluster.addWorker({ concurrency: 4 });
    for (const id of bIds) expect((await worker.waitFor(id, 60_000)).state).toBe('SUCCESS');
    const starts = (await cluster.api.store.events({ afterSeq: 0, limit: 100_000 }, '*')).filter((e) => e.type === 'started');
    const positions = starts.map((e, i) => (e.tenantId === 'B' ? i : -1)).filter((i) => i >= 0);
    expect(positions).toHaveLength(10);
    return { bFirst: positions[0]!, bLast: positions.at(-1)! };
  }

  it('fair dispatch: B\'s 10 runs start within a bounded number of starts while A floods 1,000', async () => {
    const { bFirst, bLast } = await flood(true, 1000);
    console.log(`bullmq fair: B's runs started at positions ${bFirst} to ${bLast}`);
    // Each run is placed behind its tenant's backlog: B's n-th run goes with A's n-th.
    expect(bLast).toBeLessThanOrEqual(10 * 2 + 8);
  }, 90_000);

  it('without fair dispatch, B waits behind A\'s backlog', async () => {
    const { bFirst } = await flood(false, 300);
    console.log(`bullmq unfair: B's first run started at position ${bFirst}`);
    expect(bFirst).toBeGreaterThan(250);
  }, 90_000);

  it('tenantConcurrency holds across two workers; a held-back run goes back to Redis and runs later', async () => {
    let running = 0;
    let peak = 0;
    const work = defineTask({
      name: 'fair.bull.limited',
      params: company,
      tenantConcurrency: 2,
      retry: false,
      run: async () => {
        peak = Math.max(peak, ++running);
        await sleep(50);
        running--;
      },
    });
    const cluster = await startCluster({ tasks: [work], workers: 2, concurrency: 4 });
    cleanups.push(() => cluster.close());
    const ids = await cluster.api.submitMany(Array.from({ length: 10 }, () => ({ name: 'fair.bull.limited', params: { company_id: 'X' } })));
    for (const id of ids) expect((await cluster.api.waitFor(id, 30_000)).state).toBe('SUCCESS');
    expect(peak).toBe(2);
  }, 60_000);

  it('rateLimit: starts never exceed max in any window, across two workers', async () => {
    const rated = defineTask({ name: 'fair.bull.rated', params: company, rateLimit: { max: 3, duration: '300ms' }, retry: false, run: () => null });
    const cluster = await startCluster({ tasks: [rated], workers: 2, concurrency: 4 });
    cleanups.push(() => cluster.close());
    const ids = await cluster.api.submitMany(Array.from({ length: 9 }, (_, i) => ({ name: 'fair.bull.rated', params: { company_id: `c${i}` } })));
    const starts: number[] = [];
    for (const id of ids) {
      const record = await cluster.api.waitFor(id, 30_000);
      expect(record.state).toBe('SUCCESS');
      starts.push(record.startedAt!);
    }
    starts.sort((a, b) => a - b);
    for (const start of starts) expect(starts.filter((s) => s > start - 300 && s <= start).length).toBeLessThanOrEqual(3);
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(2 * 300);
  }, 60_000);
});
