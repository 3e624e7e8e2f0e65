import type { Pause, TaskStore } from '../store/types.js';
import type { Logger } from './types.js';

/** How often an engine re-reads the paused queues and task types from the ledger. */
export const PAUSE_REFRESH_MS = 500;

/**
 * The ledger's paused queues and task types, as one engine sees them: re-read every `refreshMs`,
 * so every process sharing the ledger honours a pause (or a resume) within about that long.
 * `onChange` fires when the set changes, e.g. to claim work a resume just freed.
 */
export class PauseWatch {
  names = new Set<string>();
  queues = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private signature = '';

  constructor(
    private readonly store: TaskStore,
    private readonly logger: Logger,
    private readonly onChange: () => void = () => {},
    private readonly refreshMs = PAUSE_REFRESH_MS,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get any(): boolean {
    return this.names.size > 0 || this.queues.size > 0;
  }

  async refresh(): Promise<void> {
    let pauses: Pause[];
    try {
      pauses = await this.store.pauses();
    } catch (error) {
      // The last known pauses stay in force until the ledger answers again.
      this.logger.warn({ err: error }, 'could not read paused queues and task types');
      return;
    }
    const signature = pauses.map((p) => `${p.kind}\u0000${p.name}`).join('\u0001');
    if (signature === this.signature) return;
    this.signature = signature;
    this.names = new Set(pauses.filter((p) => p.kind === 'task_type').map((p) => p.name));
    this.queues = new Set(pauses.filter((p) => p.kind === 'queue').map((p) => p.name));
    this.onChange();
  }
}
