import { api, queryString, type TaskPage } from './api';
import { stream, type TaskEvent } from './events';

/**
 * Finished runs per 5-second bucket, counted from the event stream while the page is open
 * (the API gives totals for the last minute and hour, not a history). Kept for an hour.
 * The minutes before the page opened are read once from the ledger (see `seedFromLedger`).
 */
export const BUCKET_MS = 5000;
const KEEP = 720;

export interface Bucket {
  /** Start of the bucket, epoch ms. */
  t: number;
  succeeded: number;
  failed: number;
  revoked: number;
}

const buckets: Bucket[] = [];
export const since = Date.now();
/** From when the counts are complete: the page's opening, or earlier once the ledger was read. */
let knownFrom = since;
let seeding: Promise<void> | null = null;

const SEED_LIMIT = 500;

const OUTCOME = { SUCCESS: 'succeeded', FAILURE: 'failed', REVOKED: 'revoked' } as const;

export function record(events: Array<Pick<TaskEvent, 'type' | 'at'>>): void {
  for (const event of events) {
    if (event.type !== 'succeeded' && event.type !== 'failed' && event.type !== 'revoked') continue;
    const t = Math.floor(Date.parse(event.at) / BUCKET_MS) * BUCKET_MS;
    // Events come in order, so the bucket is almost always the last one; replays may be older.
    let i = buckets.length - 1;
    while (i >= 0 && buckets[i]!.t > t) i--;
    let bucket = buckets[i];
    if (!bucket || bucket.t !== t) {
      bucket = { t, succeeded: 0, failed: 0, revoked: 0 };
      buckets.splice(i + 1, 0, bucket);
      if (buckets.length > KEEP) buckets.shift();
    }
    bucket[event.type] += 1;
  }
}

/** The chart's window: the last ten minutes (the buckets are kept for an hour). */
const WINDOW_MS = 10 * 60_000;

/**
 * Fills the window before the page opened from the ledger: the latest runs created in it that
 * have finished. When there are more than one page of them, only the part the page covers counts.
 */
export function seedFromLedger(now = Date.now()): Promise<void> {
  seeding ??= (async () => {
    const from = now - WINDOW_MS;
    const query = queryString({ state: 'SUCCESS,FAILURE,REVOKED', since: new Date(from).toISOString(), limit: SEED_LIMIT });
    const page = await api<TaskPage>(`/api/tasks${query}`);
    const before = page.tasks.filter((t) => t.finished_at && Date.parse(t.finished_at) < since);
    record(before.map((t) => ({ type: OUTCOME[t.state as keyof typeof OUTCOME], at: t.finished_at! })));
    const oldest = page.tasks.length ? Date.parse(page.tasks[page.tasks.length - 1]!.created_at) : from;
    knownFrom = page.next_cursor ? oldest : from;
  })().catch(() => {
    seeding = null;
  });
  return seeding;
}

/**
 * Series for a chart over the window: zeros where nothing finished, and gaps (null) where
 * nothing is known.
 */
export function series(now = Date.now()): { t: number[]; succeeded: Array<number | null>; failed: Array<number | null>; revoked: Array<number | null> } {
  const end = Math.floor(now / BUCKET_MS) * BUCKET_MS;
  const opened = Math.ceil(knownFrom / BUCKET_MS) * BUCKET_MS;
  const byT = new Map(buckets.map((b) => [b.t, b]));
  const out = { t: [] as number[], succeeded: [] as Array<number | null>, failed: [] as Array<number | null>, revoked: [] as Array<number | null> };
  for (let t = end - WINDOW_MS + BUCKET_MS; t <= end; t += BUCKET_MS) {
    const b = byT.get(t);
    const known = t >= opened;
    out.t.push(t / 1000);
    out.succeeded.push(known ? (b?.succeeded ?? 0) : null);
    out.failed.push(known ? (b?.failed ?? 0) : null);
    out.revoked.push(known ? (b?.revoked ?? 0) : null);
  }
  return out;
}

stream.subscribe((message) => {
  if (message.kind === 'events') record(message.events);
});
