import type { TaskEvent } from '../core/events.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import type { MaintenanceService } from './service.js';

/** Handles a page of events, oldest first. Throwing stops the page; it is read again later. */
export type ConsumerHandler = (events: TaskEvent[]) => Promise<void> | void;

export interface ConsumerOptions {
  /** Events per page (default 500). */
  pageSize?: number;
  /** How often the leader looks for new events when nothing wakes it (default 1 s). */
  intervalMs?: number;
  /** Where a consumer with no saved cursor starts (default: the end of the log when it first runs). */
  startAfter?: number;
  /** Whether this process may consume now (it holds the consumer's leader role). Default: always. */
  leading?: () => boolean;
}

/**
 * A durable consumer of the event log (webhook deliveries, an app module's sync): its cursor
 * lives in the ledger, one process at a time runs it (the holder of its own leader role, among
 * the processes that host it), and after a crash it resumes from its cursor.
 * Delivery is at least once, so handlers are idempotent by event (e.g. keyed by `event.seq`).
 * A new consumer starts at the end of the log (or `startAfter`), not its beginning.
 */
export class DurableConsumer implements MaintenanceService {
  /** Not the maintenance leader's: each consumer has its own role (see `leading`). */
  readonly leaderOnly = false;
  readonly intervalMs: number;
  private readonly pageSize: number;
  private readonly startAfter: number | undefined;
  private readonly leading: () => boolean;
  private busy: Promise<number> | null = null;
  private again = false;

  constructor(
    readonly name: string,
    private readonly store: TaskStore,
    private readonly handler: ConsumerHandler,
    private readonly logger: Logger,
    options: ConsumerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.pageSize = options.pageSize ?? 500;
    this.startAfter = options.startAfter;
    this.leading = options.leading ?? (() => true);
  }

  /**
   * Consumes everything committed so far; one drain at a time, and a call during a drain
   * drains again after it, so nothing committed before the call is left. Returns how many events.
   */
  runOnce(): Promise<number> {
    if (!this.leading()) return Promise.resolve(0);
    if (this.busy) {
      this.again = true;
      return this.busy;
    }
    const run = async (): Promise<number> => {
      let total = 0;
      do {
        this.again = false;
        total += await this.drain();
      } while (this.again);
      return total;
    };
    this.busy = run().finally(() => (this.busy = null));
    return this.busy;
  }

  private async drain(): Promise<number> {
    const key = `consumer:${this.name}`;
    let cursor = await this.store.cursor(key);
    if (cursor === null) {
      cursor = this.startAfter ?? (await this.store.lastSeq());
      await this.store.saveCursor(key, cursor);
    }
    let total = 0;
    for (;;) {
      const events = await this.store.events({ afterSeq: cursor, limit: this.pageSize }, '*');
      if (events.length === 0) break;
      await this.handler(events);
      cursor = events[events.length - 1]!.seq;
      await this.store.saveCursor(key, cursor);
      total += events.length;
      if (events.length < this.pageSize) break;
    }
    if (total > 0) this.logger.debug({ consumer: this.name, events: total, cursor }, 'consumer caught up');
    return total;
  }
}
