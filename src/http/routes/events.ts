import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { TaskEvent } from '../../core/events.js';
import type { EventQuery, TenantScope } from '../../store/types.js';
import type { Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import { SseWriter, StreamSlots } from '../sse.js';
import { parseInput } from '../validation.js';

export interface EventRoutesOptions {
  /** Interval of `: ping` comment lines, which keep proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
  /** Open streams per API key; anonymous callers share one key (default 100). */
  maxStreamsPerKey?: number;
  /** Open streams on this server (default 1,000). */
  maxStreams?: number;
  /** Bytes queued for one slow client before it is dropped (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Most ledger events a resume replays; a client further behind gets `event: resync` (default 10,000). */
  maxReplayEvents?: number;
}

export const SSE_DEFAULTS = {
  heartbeatMs: 15_000,
  maxStreamsPerKey: 100,
  maxStreams: 1_000,
  maxBufferedBytes: 1024 * 1024,
  maxReplayEvents: 10_000,
} as const satisfies Required<EventRoutesOptions>;

/** Ledger replay page size; the replay yields to other requests between pages. */
const PAGE = 250;
/** Live events held while a resume replays the ledger; beyond this they are dropped and re-read from the ledger. */
const MAX_REPLAY_BUFFER = 10_000;
/** What a refused stream is told to wait before retrying. */
const RETRY_AFTER_SECONDS = 10;

const seqText = z
  .string()
  .trim()
  .regex(/^\d{1,15}$/, 'must be a non-negative integer (the id of the last event received)')
  .transform(Number);

const eventsQuery = z.object({
  task_id: z.string().min(1).max(200).optional(),
  company_id: z.string().min(1).max(200).optional(),
  tenant_id: z.string().min(1).max(200).optional(),
  /** The category, as in the unified API. */
  task_type: z.string().min(1).max(200).optional(),
  name: z.string().min(1).max(200).optional(),
  last_event_id: seqText.optional(),
});

type Filter = Omit<EventQuery, 'afterSeq' | 'limit'>;

function matches(event: TaskEvent, filter: Filter, scope: TenantScope): boolean {
  if (scope !== '*' && (event.tenantId === null || !scope.includes(event.tenantId))) return false;
  if (filter.taskId !== undefined && event.taskId !== filter.taskId) return false;
  if (filter.tenantId !== undefined && event.tenantId !== filter.tenantId) return false;
  if (filter.name !== undefined && event.name !== filter.name) return false;
  if (filter.category !== undefined && event.category !== filter.category) return false;
  return true;
}

/** One SSE frame. `id` is the ledger seq, so a browser's EventSource resumes by itself. */
export function eventFrame(event: TaskEvent): string {
  const data = {
    seq: event.seq,
    task_id: event.taskId,
    type: event.type,
    state: event.state,
    name: event.name,
    task_type: event.category,
    tenant_id: event.tenantId,
    at: new Date(event.at).toISOString(),
    data: event.data,
  };
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Live events reach every stream as the same object: serialize each once, not once per client.
 * Weakly held, so a frame lives only as long as some client still queues it.
 */
const liveFrames = new WeakMap<TaskEvent, string>();
function liveFrame(event: TaskEvent): string {
  let frame = liveFrames.get(event);
  if (frame === undefined) liveFrames.set(event, (frame = eventFrame(event)));
  return frame;
}

/** Sent instead of a replay that would be too long: the client re-reads state, then follows from `seq`. */
function resyncFrame(requested: number, seq: number, maxReplay: number): string {
  const data = {
    seq,
    requested_last_event_id: requested,
    detail:
      `More than ${maxReplay} events happened after event ${requested}, too many to replay. ` +
      `Re-read the current state from the ledger (GET /api/tasks); this stream continues live after event ${seq}.`,
  };
  return `id: ${seq}\nevent: resync\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * The newest seq in the ledger, at or after `known` (an existing seq). The store contract has no
 * "max seq" query, so this gallops and then bisects with one-row index seeks: O(log n) of them.
 */
async function latestSeq(yard: Taskyard, known: number): Promise<number> {
  const after = async (seq: number) => (await yard.store.events({ afterSeq: seq, limit: 1 }, '*'))[0]?.seq;
  let step = 1024;
  for (let next = await after(known + step); next !== undefined; next = await after(known + step)) {
    known = next;
    step *= 2;
  }
  // Now `known` exists and nothing lies after `known + step`.
  let high = known + step;
  while (known < high) {
    const mid = Math.floor((known + high) / 2);
    const next = await after(mid);
    if (next === undefined) high = mid;
    else known = next;
  }
  return known;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * `GET /api/tasks/events`: Server-Sent Events of task transitions, progress and log lines,
 * filtered and limited to the caller's tenants. `Last-Event-ID` (or `last_event_id`) replays
 * what was missed from the ledger, then continues live, without gaps or duplicates.
 *
 * Bounded at every step: streams per key and in total (429 beyond), bytes queued per slow client
 * (dropped beyond), and the replay (`event: resync` beyond), which also yields to other
 * requests between pages.
 */
export function eventRoutes(app: FastifyInstance, yard: Taskyard, options: EventRoutesOptions = {}): void {
  const settings = { ...SSE_DEFAULTS, ...definedOnly(options) };
  const { heartbeatMs, maxBufferedBytes, maxReplayEvents } = settings;
  if (!(heartbeatMs > 0)) throw new Error('heartbeatMs must be > 0');
  if (!(maxBufferedBytes > 0)) throw new Error('maxBufferedBytes must be > 0');
  if (!Number.isInteger(maxReplayEvents) || maxReplayEvents < 0) throw new Error('maxReplayEvents must be an integer >= 0');
  const slots = new StreamSlots(settings.maxStreamsPerKey, settings.maxStreams);
  const open = new Set<ServerResponse>();

  // Open streams would keep server.close() waiting forever; end them when the app closes.
  app.addHook('preClose', async () => {
    for (const raw of open) raw.end();
  });

  app.get(
    '/api/tasks/events',
    {
      // A HEAD would hijack and hold a bodiless stream open.
      exposeHeadRoute: false,
      schema: {
        tags: ['Tasks'],
        summary: 'Live task events (Server-Sent Events); resumable with Last-Event-ID',
        querystring: {
          type: 'object',
          properties: {
            task_id: { type: 'string' },
            company_id: { type: 'string' },
            tenant_id: { type: 'string' },
            task_type: { type: 'string', description: 'category' },
            name: { type: 'string' },
            last_event_id: { type: 'string', description: 'resume after this event id (or send the Last-Event-ID header)' },
          },
        },
      },
    },
    async (request, reply) => {
      // Everything that can fail as JSON (bad query, unknown task, caps) happens before the stream starts.
      const q = parseInput(eventsQuery, request.query, 'query');
      const header = request.headers['last-event-id'];
      const resumeFrom =
        typeof header === 'string' && header.trim() !== ''
          ? parseInput(z.object({ 'last-event-id': seqText }), { 'last-event-id': header }, 'query')['last-event-id']
          : q.last_event_id;
      const scope = scopeOf(request);
      const filter: Filter = {
        taskId: q.task_id,
        tenantId: q.tenant_id ?? q.company_id,
        name: q.name,
        category: q.task_type,
      };
      if (q.task_id !== undefined) await yard.get(q.task_id, scope); // 404 outside scope

      const slot = slots.take(request.principal.keyId);
      if ('refused' in slot) {
        return reply.status(429).header('Retry-After', String(RETRY_AFTER_SECONDS)).send({ detail: slot.refused });
      }

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      open.add(raw);

      let closed = false;
      let lastSent = resumeFrom ?? 0;
      let replaying = resumeFrom !== undefined;
      let replayBuffer: TaskEvent[] = [];
      let replayOverflowed = false;

      const writer = new SseWriter(raw, maxBufferedBytes, (queued) => {
        // A client that does not read must not grow memory: it is cut off, and resumes with Last-Event-ID.
        request.log.warn({ queuedBytes: queued, limit: maxBufferedBytes }, 'dropping event stream client that does not keep up');
        cleanup();
        raw.destroy();
      });

      const cleanup = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        writer.close();
        replayBuffer = [];
        open.delete(raw);
        slot.release();
      };

      const sendEvent = (event: TaskEvent, frame: string) => {
        if (event.seq <= lastSent) return; // already sent (replay and live overlap)
        lastSent = event.seq;
        writer.send(frame);
      };

      // Subscribe before replaying, so nothing committed meanwhile is missed.
      const unsubscribe = yard.on('*', (event) => {
        if (closed || !matches(event, filter, scope)) return;
        if (!replaying) return sendEvent(event, liveFrame(event));
        if (replayBuffer.length >= MAX_REPLAY_BUFFER) {
          // Everything dropped here is already committed, so the replay reads it from the ledger.
          replayBuffer = [];
          replayOverflowed = true;
        }
        replayBuffer.push(event);
      });
      const heartbeat = setInterval(() => writer.send(': ping\n\n'), heartbeatMs);
      heartbeat.unref();
      request.raw.on('close', cleanup);
      raw.on('close', cleanup);
      raw.on('error', cleanup);

      writer.send(`retry: 3000\n: connected\n\n`);

      if (resumeFrom === undefined) return;
      try {
        const [beyond] = await yard.store.events({ afterSeq: resumeFrom + maxReplayEvents, limit: 1 }, '*');
        if (closed) return;
        if (beyond) {
          // Too far behind to replay: say so once, then continue live from the ledger's head.
          const head = await latestSeq(yard, beyond.seq);
          if (closed) return;
          lastSent = head;
          writer.send(resyncFrame(resumeFrom, head, maxReplayEvents));
        } else {
          for (;;) {
            replayOverflowed = false;
            const page = await yard.store.events({ ...filter, afterSeq: lastSent, limit: PAGE }, scope);
            if (closed) return;
            for (const event of page) {
              sendEvent(event, eventFrame(event));
              // Replay at the client's pace: never queue more than a frame for it.
              if (writer.isBlocked) await writer.writable();
              if (closed) return;
            }
            if (page.length < PAGE && !replayOverflowed) break;
            // Let other requests in between pages: a replay of a long ledger must not stall the server.
            await nextTurn();
            if (closed) return;
          }
        }
        replaying = false;
        const buffered = replayBuffer;
        replayBuffer = [];
        for (const event of buffered) sendEvent(event, liveFrame(event));
      } catch (error) {
        request.log.error({ err: error }, 'event stream replay failed');
        writer.send(`event: error\ndata: ${JSON.stringify({ detail: 'Replay failed; reconnect to resume' })}\n\n`);
        cleanup();
        raw.end();
      }
    },
  );
}

/** Options left undefined keep their defaults. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
