import { authHeaders, notifyUnauthorized, type TaskState } from './api';

/**
 * The live event stream, `GET /api/tasks/events`, read with fetch() so the API key travels in a
 * header (EventSource cannot send one, and a key in the URL would end up in logs). One stream
 * serves every view; it resumes with `Last-Event-ID`, so a dropped connection loses nothing.
 */

export interface TaskEvent {
  seq: number;
  task_id: string;
  type: string;
  state: TaskState;
  name: string;
  task_type: string;
  tenant_id: string | null;
  at: string;
  data: Record<string, unknown> | null;
}

export interface SseFrame {
  id: string | null;
  event: string;
  data: string;
}

/** Incremental Server-Sent Events parser (the WHATWG rules: `id:`, `event:`, `data:`, `retry:`, comments). */
export class SseParser {
  private buffer = '';
  private id: string | null = null;
  private event = '';
  private data: string[] = [];
  /** The server's `retry:` advice, in milliseconds. */
  retryMs: number | null = null;

  push(chunk: string): SseFrame[] {
    this.buffer += chunk;
    const frames: SseFrame[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const frame = this.line(line);
      if (frame) frames.push(frame);
    }
    return frames;
  }

  private line(line: string): SseFrame | null {
    if (line === '') {
      if (this.data.length === 0 && this.event === '') return null;
      const frame = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
      this.event = '';
      this.data = [];
      return frame;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }
}

export type StreamStatus = 'connecting' | 'live' | 'offline';

/** What listeners receive: task events in order, batched; `resync` when they must re-read the ledger. */
export type StreamMessage = { kind: 'events'; events: TaskEvent[] } | { kind: 'resync' };

type Listener = (message: StreamMessage) => void;

const FLUSH_MS = 100;
const MAX_BACKOFF_MS = 30_000;

export class EventStream {
  private readonly listeners = new Set<Listener>();
  private readonly statusListeners = new Set<(status: StreamStatus) => void>();
  private controller: AbortController | null = null;
  private lastEventId: string | null = null;
  private pending: TaskEvent[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  status: StreamStatus = 'offline';

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (status: StreamStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  start(): void {
    if (this.controller) return;
    this.controller = new AbortController();
    void this.run(this.controller.signal);
  }

  stop(): void {
    this.controller?.abort();
    this.controller = null;
    this.lastEventId = null;
    this.setStatus('offline');
  }

  private setStatus(status: StreamStatus) {
    if (this.status === status) return;
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let backoff = 1000;
    while (!signal.aborted) {
      this.setStatus('connecting');
      const parser = new SseParser();
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
        if (this.lastEventId !== null) headers['last-event-id'] = this.lastEventId;
        const response = await fetch('/api/tasks/events', { headers, signal, cache: 'no-store', credentials: 'omit' });
        if (response.status === 401) {
          notifyUnauthorized();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`event stream answered ${response.status}`);
        const fresh = this.lastEventId === null;
        this.setStatus('live');
        backoff = 1000;
        // Without a resume point, events before this connection are unknown: views re-read.
        if (fresh) this.emit({ kind: 'resync' });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const frame of parser.push(value)) this.frame(frame);
        }
      } catch {
        if (signal.aborted) return;
      }
      this.setStatus('offline');
      await sleep(Math.max(parser.retryMs ?? 0, backoff), signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private frame(frame: SseFrame): void {
    if (frame.id !== null) this.lastEventId = frame.id;
    if (frame.event === 'resync') {
      this.flush();
      this.emit({ kind: 'resync' });
      return;
    }
    if (frame.event === 'error') return;
    let event: TaskEvent;
    try {
      event = JSON.parse(frame.data) as TaskEvent;
    } catch {
      return;
    }
    if (typeof event.task_id !== 'string') return;
    this.pending.push(event);
    // Bursts of thousands of events a second become a few renders a second.
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.emit({ kind: 'events', events });
  }

  private emit(message: StreamMessage): void {
    for (const listener of this.listeners) listener(message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

export const stream = new EventStream();
