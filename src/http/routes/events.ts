import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { TaskEvent } from '../../core/events.js';
import type { EventQuery, TenantScope } from '../../store/types.js';
import type { Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import { parseInput } from '../validation.js';

export interface EventRoutesOptions {
  /** Interval of `: ping` comment lines, which keep proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
  /** Events queued for one slow client before it is dropped (default 1,000). */
  maxPendingEvents?: number;
}

/** Ledger replay page size. */
const PAGE = 500;
/** Live events held while a resume replays the ledger; beyond this they are dropped and re-read from the ledger. */
const MAX_REPLAY_BUFFER = 10_000;

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
 * `GET /api/tasks/events`: Server-Sent Events of task transitions, progress and log lines,
 * filtered and limited to the caller's tenants. `Last-Event-ID` (or `last_event_id`) replays
 * what was missed from the ledger, then continues live, without gaps or duplicates.
 */
export function eventRoutes(app: FastifyInstance, yard: Taskyard, options: EventRoutesOptions = {}): void {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxPending = options.maxPendingEvents ?? 1_000;
  if (!(heartbeatMs > 0)) throw new Error('heartbeatMs must be > 0');
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
      // Everything that can fail as JSON (bad query, unknown task) happens before the stream starts.
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
      let blocked = false; // the socket buffer is full: queue instead of writing
      const pending: string[] = [];
      let waiters: Array<() => void> = [];
      let lastSent = resumeFrom ?? 0;
      let replaying = resumeFrom !== undefined;
      let replayBuffer: TaskEvent[] = [];
      let replayOverflowed = false;

      const wake = () => {
        const ready = waiters;
        waiters = [];
        for (const resolve of ready) resolve();
      };

      const cleanup = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        raw.off('drain', onDrain);
        pending.length = 0;
        replayBuffer = [];
        open.delete(raw);
        wake();
      };

      const drop = (reason: string) => {
        request.log.warn({ reason }, 'dropping event stream client');
        cleanup();
        raw.destroy();
      };

      const send = (chunk: string) => {
        if (closed) return;
        if (blocked) {
          // A client that does not read must not grow memory forever.
          if (pending.length >= maxPending) return drop(`more than ${maxPending} events pending`);
          pending.push(chunk);
          return;
        }
        if (!raw.write(chunk)) blocked = true;
      };

      function onDrain() {
        blocked = false;
        while (!blocked && pending.length > 0) {
          if (!raw.write(pending.shift()!)) blocked = true;
        }
        if (!blocked) wake();
      }

      const sendEvent = (event: TaskEvent) => {
        if (event.seq <= lastSent) return; // already sent (replay and live overlap)
        lastSent = event.seq;
        send(eventFrame(event));
      };

      /** Resolves once everything queued is handed to the socket, or the client is gone. */
      const writable = () => (closed || !blocked ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));

      // Subscribe before replaying, so nothing committed meanwhile is missed.
      const unsubscribe = yard.on('*', (event) => {
        if (closed || !matches(event, filter, scope)) return;
        if (!replaying) return sendEvent(event);
        if (replayBuffer.length >= MAX_REPLAY_BUFFER) {
          // Everything dropped here is already committed, so the replay reads it from the ledger.
          replayBuffer = [];
          replayOverflowed = true;
        }
        replayBuffer.push(event);
      });
      const heartbeat = setInterval(() => send(': ping\n\n'), heartbeatMs);
      heartbeat.unref();
      raw.on('drain', onDrain);
      request.raw.on('close', cleanup);
      raw.on('close', cleanup);
      raw.on('error', cleanup);

      send(`retry: 3000\n: connected\n\n`);

      if (!replaying) return;
      try {
        for (;;) {
          replayOverflowed = false;
          const page = await yard.store.events({ ...filter, afterSeq: lastSent, limit: PAGE }, scope);
          if (closed) return;
          for (const event of page) sendEvent(event);
          await writable();
          if (closed) return;
          if (page.length < PAGE && !replayOverflowed) break;
        }
        replaying = false;
        const buffered = replayBuffer;
        replayBuffer = [];
        for (const event of buffered) sendEvent(event);
      } catch (error) {
        request.log.error({ err: error }, 'event stream replay failed');
        send(`event: error\ndata: ${JSON.stringify({ detail: 'Replay failed; reconnect to resume' })}\n\n`);
        cleanup();
        raw.end();
      }
    },
  );
}
