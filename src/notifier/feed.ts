import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';

export interface EventFeedOptions {
  /** How often to look for events committed by other processes (SQLite has no push). */
  pollMs: number;
  /**
   * The event types this process needs from other processes right now, asked before each read;
   * null (or absent) for all. Events of other types are not read, and the cursor moves past them.
   */
  types?: () => readonly TaskEventType[] | null;
}

const PAGE = 1000;

/**
 * Every committed event, from this process or any other sharing the ledger, handed to `emit`
 * once and in seq order. Own commits go straight through when they follow the last event
 * emitted (always, in a single process); otherwise the gap is read from the ledger first.
 * A poll (or a store's push, where it has one) is only a wake-up: events are always read by
 * cursor, so a missed wake-up delays an event but never loses it. Wake-ups during a read are
 * coalesced: one more read follows it, whatever their number.
 */
export class EventFeed {
  private cursor = 0;
  private held: TaskEvent[] = [];
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private stopped = false;
  /** Set while a read limited to some types is in flight; `widened` says all became needed meanwhile. */
  private narrowRead: { from: number } | null = null;
  private widened = false;
  /** After such a widening, events up to `through` of `types` were emitted already: not again. */
  private emitted: { through: number; types: readonly TaskEventType[] } | null = null;

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

  /**
   * Every event is needed from now on (a listener or consumer was added). A read limited to some
   * types that is in flight may have passed events the newcomer would have been given (committed
   * before it came): its span is read again, without the events it emitted.
   */
  widen(): void {
    if (this.narrowRead) this.widened = true;
  }

  private async read(): Promise<void> {
    const types = this.emitted ? null : (this.options.types?.() ?? null);
    if (types) {
      await this.readTypes(types);
      if (this.emitted) return; // widened: held events wait for the read again
    } else {
      await this.readAll();
    }
    // Own events the read did not reach (none, when commits are visible at once) still go out.
    const left = this.held.filter((e) => e.seq > this.cursor);
    this.held = [];
    if (left.length > 0) {
      this.cursor = left[left.length - 1]!.seq;
      this.emit(left);
    }
  }

  private async readAll(): Promise<void> {
    for (;;) {
      const page = (await this.store.events({ afterSeq: this.cursor, limit: PAGE }, '*')).filter((e) => e.seq > this.cursor);
      if (page.length > 0) this.cursor = page[page.length - 1]!.seq;
      const events = this.emitted ? page.filter((e) => !this.wasEmitted(e)) : page;
      if (this.emitted && this.cursor >= this.emitted.through) this.emitted = null;
      if (events.length > 0) this.emit(events);
      if (page.length < PAGE) break;
    }
  }

  private wasEmitted(event: TaskEvent): boolean {
    return event.seq <= this.emitted!.through && this.emitted!.types.includes(event.type);
  }

  private async readTypes(types: readonly TaskEventType[]): Promise<void> {
    const from = this.cursor;
    this.narrowRead = { from };
    this.widened = false;
    try {
      for (;;) {
        const { events, through } = await this.store.eventsOfTypes({ afterSeq: this.cursor, types, limit: PAGE });
        const page = events.filter((e) => e.seq > this.cursor);
        // A full page may stop short of `through`: the next page starts after its last event.
        this.cursor = page.length === PAGE ? page[page.length - 1]!.seq : Math.max(this.cursor, through);
        if (page.length > 0) this.emit(page);
        if (page.length < PAGE) break;
      }
    } finally {
      this.narrowRead = null;
      if (this.widened && this.cursor > from) {
        this.emitted = { through: this.cursor, types };
        this.cursor = from;
        this.readAgain = true;
      }
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
