import type { ServerResponse } from 'node:http';

/**
 * Server-Sent Events plumbing: a byte-bounded writer per client and the stream caps. Nothing here
 * knows about tasks; routes/events.ts decides what to send.
 */

/**
 * Writes SSE chunks to one client with back-pressure. While the socket is full, chunks wait in a
 * queue; past `maxBufferedBytes` (or one chunk, if larger) the client is too slow to keep and
 * `onOverflow` is called.
 * Queued chunks are the caller's strings, so one frame queued for many clients is held once.
 */
export class SseWriter {
  private blocked = false;
  private readonly queue: string[] = [];
  private queuedBytes = 0;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly raw: ServerResponse,
    private readonly maxBufferedBytes: number,
    private readonly onOverflow: (queuedBytes: number) => void,
  ) {
    raw.on('drain', this.onDrain);
  }

  send(chunk: string): void {
    if (this.closed) return;
    if (!this.blocked) {
      if (!this.raw.write(chunk)) this.blocked = true;
      return;
    }
    this.queuedBytes += Buffer.byteLength(chunk);
    // One chunk always fits, so a single large frame does not cost a reading client its stream.
    if (this.queuedBytes > this.maxBufferedBytes && this.queue.length > 0) return this.onOverflow(this.queuedBytes);
    this.queue.push(chunk);
  }

  /** True while chunks wait for the socket. */
  get isBlocked(): boolean {
    return this.blocked;
  }

  /** Resolves once everything queued is handed to the socket, or the writer is closed. */
  writable(): Promise<void> {
    return this.closed || !this.blocked ? Promise.resolve() : new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Stops writing and lets go of the queue; the caller ends or destroys the response. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.off('drain', this.onDrain);
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.wake();
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    let sent = 0;
    while (!this.blocked && sent < this.queue.length) {
      const chunk = this.queue[sent++]!;
      this.queuedBytes -= Buffer.byteLength(chunk);
      if (!this.raw.write(chunk)) this.blocked = true;
    }
    this.queue.splice(0, sent);
    if (!this.blocked) this.wake();
  };

  private wake(): void {
    const ready = this.waiters;
    this.waiters = [];
    for (const resolve of ready) resolve();
  }
}

/** A taken stream slot; release it exactly once when the stream ends. */
export type StreamSlot = { release: () => void } | { refused: string };

/** Counts open streams per API key and in total, so no caller (nor all of them) can hold unbounded connections. */
export class StreamSlots {
  private readonly perKey = new Map<string, number>();
  private total = 0;

  constructor(
    readonly maxPerKey: number,
    readonly maxTotal: number,
  ) {
    for (const [name, value] of [['maxStreamsPerKey', maxPerKey], ['maxStreams', maxTotal]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be an integer >= 1, got ${value}`);
    }
  }

  get open(): number {
    return this.total;
  }

  take(key: string): StreamSlot {
    const mine = this.perKey.get(key) ?? 0;
    if (mine >= this.maxPerKey) {
      return { refused: `Too many open event streams for this API key (limit ${this.maxPerKey}); close one and retry` };
    }
    if (this.total >= this.maxTotal) {
      return { refused: `Too many open event streams on this server (limit ${this.maxTotal}); retry later` };
    }
    this.perKey.set(key, mine + 1);
    this.total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perKey.get(key) ?? 1) - 1;
        if (left === 0) this.perKey.delete(key);
        else this.perKey.set(key, left);
      },
    };
  }
}
