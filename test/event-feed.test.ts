/**
 * The event feed limited to some event types (a BullMQ worker needs only cancel requests), on a
 * SQLite file and on a PostgreSQL schema: two stores on one ledger stand for two processes.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineTask } from '../src/core/definition.js';
import type { TaskEvent, TaskEventType } from '../src/core/events.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import { BullMQEngine } from '../src/engines/bullmq/engine.js';
import { cancelRequestChange } from '../src/engines/execution.js';
import { EventFeed } from '../src/notifier/feed.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskStore } from '../src/store/types.js';
import { createTaskyard, type Taskyard } from '../src/taskyard.js';
import { eventually, tempDir } from './helpers.js';
import { ledgerHarnesses, type Ledger } from './ledgers.js';

const ledgers = ledgerHarnesses;

function record(): TaskRecord {
  const now = Date.now() - 1000;
  return {
    id: uuidv7(), name: 'demo.job', category: 'demo', displayName: 'Demo job', state: 'PENDING', progress: 0, progressMessage: null,
    tenantId: '73', params: {}, result: null, error: null, traceback: null, meta: null, attempt: 0, maxAttempts: 3, priority: 0,
    queue: 'default', route: 'light', engine: 'local', worker: null, idempotencyKey: null, runAt: now, cancelRequested: null,
    revokeReason: null, createdAt: now, startedAt: null, finishedAt: null, updatedAt: now,
  };
}

const silent = pino({ level: 'silent' });

describe.each(ledgers)('event feed limited to some types, %s', (_kind, makeLedger) => {
  let ledger: Ledger;
  let writer: TaskStore;
  let reader: TaskStore;
  const feeds: EventFeed[] = [];

  beforeEach(async () => {
    ledger = makeLedger();
    writer = await ledger.open();
    reader = await ledger.open();
  });

  afterEach(async () => {
    for (const feed of feeds.splice(0)) await feed.stop();
    await ledger.dispose();
  });

  /** Runs inserted and started by the writer ("another process"). */
  async function startedRuns(count: number): Promise<TaskRecord[]> {
    await writer.insert(Array.from({ length: count }, record));
    return writer.claim({ limit: count, now: Date.now(), worker: 'w1', names: ['demo.job'] });
  }

  async function feedOf(store: TaskStore, types: () => readonly TaskEventType[] | null): Promise<{ feed: EventFeed; got: TaskEvent[] }> {
    const got: TaskEvent[] = [];
    const feed = new EventFeed(store, (events) => got.push(...events), silent, { pollMs: 10, types });
    feeds.push(feed);
    await feed.start();
    return { feed, got };
  }

  it('the store reads one page of the types asked for, and the newest seq it saw', async () => {
    const runs = await startedRuns(3);
    await writer.apply(runs.map((r) => cancelRequestChange(r, null, false)));
    const newest = await writer.lastSeq();
    const all = await reader.events({ afterSeq: 0, limit: 100 }, '*');
    const cancels = all.filter((e) => e.type === 'cancel_requested');
    expect(cancels).toHaveLength(3);

    const first = await reader.eventsOfTypes({ afterSeq: 0, types: ['cancel_requested'], limit: 2 });
    expect(first.events).toEqual(cancels.slice(0, 2));
    expect(first.through).toBe(newest);
    const rest = await reader.eventsOfTypes({ afterSeq: cancels[1]!.seq, types: ['cancel_requested', 'revoked'], limit: 2 });
    expect(rest.events).toEqual(cancels.slice(2));
    // Nothing newer: the cursor stays where it is.
    expect(await reader.eventsOfTypes({ afterSeq: newest, types: ['cancel_requested'], limit: 2 })).toEqual({ events: [], through: newest });
    expect(await reader.eventsOfTypes({ afterSeq: 0, types: ['failed'], limit: 2 })).toEqual({ events: [], through: newest });
  });

  it('delivers only the types asked for, once each and in order, its cursor moving past the others', async () => {
    const { feed, got } = await feedOf(reader, () => ['cancel_requested']);
    const runs = await startedRuns(4);
    await eventually(async () => feed.position === (await writer.lastSeq()));
    expect(got).toEqual([]); // enqueued and started events of another process are not read

    await writer.apply([cancelRequestChange(runs[2]!, 'first', false)]);
    await writer.apply([cancelRequestChange(runs[0]!, 'second', true)]);
    await writer.insert([record(), record()]);
    await eventually(async () => feed.position === (await writer.lastSeq()));
    expect(got.map((e) => [e.type, e.taskId, e.data?.reason])).toEqual([
      ['cancel_requested', runs[2]!.id, 'first'],
      ['cancel_requested', runs[0]!.id, 'second'],
    ]);

    // More polls read nothing again.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(got).toHaveLength(2);
    await writer.apply([cancelRequestChange(runs[1]!, 'third', false)]);
    await eventually(() => got.length === 3);
    expect(got[2]!.taskId).toBe(runs[1]!.id);
    expect(got.map((e) => e.seq)).toEqual([...got.map((e) => e.seq)].sort((a, b) => a - b));
  });

  it('a listener that comes during a limited read is given what that read passed over, and nothing twice', async () => {
    const runs = await startedRuns(2);
    await writer.apply([cancelRequestChange(runs[0]!, null, false)]);
    let types: readonly TaskEventType[] | null = ['cancel_requested'];
    // The reader's store, its limited read held until the listener has come (the race, made certain).
    let arrived!: () => void;
    const inRead = new Promise<void>((resolve) => (arrived = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const eventsOfTypes: TaskStore['eventsOfTypes'] = async (query) => {
      const page = await reader.eventsOfTypes(query);
      arrived();
      await released;
      return page;
    };
    // No push wake-ups either: the test wakes the feed itself.
    const held = new Proxy(reader, {
      get: (store, key) => (key === 'eventsOfTypes' ? eventsOfTypes : key === 'listen' ? undefined : Reflect.get(store, key, store)),
    });
    const got: TaskEvent[] = [];
    const feed = new EventFeed(held, (events) => got.push(...events), silent, { pollMs: 60_000, types: () => types });
    feeds.push(feed);
    await feed.start(); // from the ledger's current end
    const after = await writer.insert([record()]);
    await writer.apply([cancelRequestChange(runs[1]!, null, false)]);
    feed.wake();
    await inRead;
    types = null;
    feed.widen();
    release();
    await eventually(async () => feed.position === (await writer.lastSeq()) && got.length === 2);
    expect(got.map((e) => [e.type, e.taskId])).toEqual([
      ['cancel_requested', runs[1]!.id],
      ['enqueued', after[0]!.taskId],
    ]);
    // Later events of every type come once.
    const more = await writer.insert([record()]);
    feed.wake();
    await eventually(() => got.length === 3);
    expect(got[2]!.taskId).toBe(more[0]!.taskId);
  });
});

describe('a yard whose engine needs only cancel requests', () => {
  let temp: ReturnType<typeof tempDir>;
  const yards: Taskyard[] = [];
  const job = defineTask({ name: 'feed.job', async run() { return 'done'; } });

  beforeEach(() => {
    temp = tempDir();
  });

  afterEach(async () => {
    for (const yard of yards.splice(0)) await yard.close();
    await temp.cleanup();
  });

  it('still hands every event to its listeners and waits, from any process', async () => {
    const filename = join(temp.dir, 'ledger.db');
    const peers = { feedPollMs: 10 };
    const runner = await createTaskyard({ tasks: [job], store: new SqliteStore({ filename }), logger: silent, peers });
    yards.push(runner);
    // A BullMQ API process that does not execute: no Redis needed; its engine reads cancel requests only.
    const api = await createTaskyard({
      tasks: [job], store: new SqliteStore({ filename }), logger: silent, peers, execute: false,
      engine: new BullMQEngine({ queue: 'feed-test', worker: false }),
    });
    yards.push(api);
    const id = await runner.submit('feed.job');
    expect((await api.waitFor(id, 5000)).state).toBe('SUCCESS');

    const seen: TaskEvent[] = [];
    const off = api.on('*', (event) => seen.push(event));
    const next = await runner.submit('feed.job');
    await eventually(() => seen.some((e) => e.taskId === next && e.type === 'succeeded'));
    expect(seen.filter((e) => e.taskId === next).map((e) => e.type)).toEqual(['enqueued', 'started', 'succeeded']);
    off();
  });
});
