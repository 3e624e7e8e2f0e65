import type { TaskEvent } from '../core/events.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';

export interface EventFeedOptions {
  /** How often to look for events committed by other processes (SQLite has no push). */
  pollMs: number;
}

/**
 * Every committed event, from this process or any other sharing the ledger, handed to `emit`
 * once and in seq order. Own commits go straight through when they follow the last event
 * emitted (always, in a single process); otherwise the gap is read from the ledger first.
 * A poll (or a store's push, where it has one) is only a wake-up: events are always read by
 * cursor, so a missed wake-up delays an event but never loses it.
 */
export class EventFeed {
  private cursor = 0;
  private held: TaskEvent[] = [];
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private stopped = false;

  constructor(
    private readonly store: TaskStore,
    private readonly emit: (events: TaskEvent[]) => void,
    private readonly logger: Logger,
    private readonly options: EventFeedOptions,
  ) {}

  async start(): Promise<void> {
    this.cursor = Math.max(this.cursor, await this.store.lastSeq());
    this.stopped = false;
    if (this.store.listen) this.unlisten = await this.store.listen(() => this.wake());
    this.arm();
  }

  /** Events this process just committed, in seq order. */
  own(events: TaskEvent[]): void {
    if (events.length === 0) return;
    if (!this.reading && this.held.length === 0 && events[0]!.seq === this.cursor + 1) {
      this.cursor = events[events.length - 1]!.seq;
      this.emit(events);
      return;
    }
    this.held.push(...events);
    this.wake();
  }

  /** Reads whatever was committed since the cursor. */
  wake(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = this.read()
      .catch((error) => this.logger.warn({ err: error }, 'reading the event log failed; retrying on the next poll'))
      .finally(() => {
        this.reading = null;
        if (this.readAgain) {
          this.readAgain = false;
          this.wake();
        }
      });
  }

  private async read(): Promise<void> {
    const PAGE = 1000;
    for (;;) {
      const events = (await this.store.events({ afterSeq: this.cursor, limit: PAGE }, '*')).filter((e) => e.seq > this.cursor);
      if (events.length > 0) {
        this.cursor = events[events.length - 1]!.seq;
        this.emit(events);
      }
      if (events.length < PAGE) break;
    }
    // Own events the read did not reach (none, when commits are visible at once) still go out.
    const left = this.held.filter((e) => e.seq > this.cursor);
    this.held = [];
    if (left.length > 0) {
      this.cursor = left[left.length - 1]!.seq;
      this.emit(left);
    }
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.wake();
      this.arm();
    }, this.options.pollMs);
    this.timer.unref();
  }

  /** The seq of the last event emitted. */
  get position(): number {
    return this.cursor;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.unlisten?.();
    await this.reading;
  }
}
