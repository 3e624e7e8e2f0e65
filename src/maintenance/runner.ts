import type { Logger } from '../engines/types.js';
import type { Leadership } from './leadership.js';
import type { RoundRecorder } from './rounds.js';
import type { MaintenanceService } from './service.js';

/** Longer delays overflow Node's timers (and fire at once); a round past it just checks again. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs maintenance services on their intervals. Leadership is claimed (or renewed) before each
 * round of leader-only duties, so they stop within one interval of losing it. Rounds of services
 * that ask for it are written to the ledger as runs (see RoundRecorder).
 */
export class MaintenanceRunner {
  private readonly timers = new Map<MaintenanceService, NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = true;
  private startedAt = Date.now();

  constructor(
    private readonly services: MaintenanceService[],
    private readonly leadership: Leadership,
    private readonly logger: Logger,
    private readonly recorder?: RoundRecorder,
  ) {}

  add(service: MaintenanceService): void {
    this.services.push(service);
    if (!this.stopped) this.schedule(service, 0);
  }

  remove(service: MaintenanceService): void {
    const i = this.services.indexOf(service);
    if (i >= 0) this.services.splice(i, 1);
    const timer = this.timers.get(service);
    if (timer) clearTimeout(timer);
    this.timers.delete(service);
  }

  start(): void {
    this.stopped = false;
    this.startedAt = Date.now();
    for (const service of this.services) this.schedule(service, 0);
  }

  /** Runs one service now (tests, and "run now" from an operator); recorded like any round. */
  async runNow(name: string): Promise<unknown> {
    const service = this.services.find((s) => s.name === name);
    if (!service) throw new Error(`No maintenance service named ${name}`);
    return this.execute(service);
  }

  private schedule(service: MaintenanceService, delayMs: number): void {
    if (this.stopped || !this.services.includes(service)) return;
    const timer = setTimeout(() => {
      const round = this.round(service).then((next) => {
        this.running.delete(round);
        this.schedule(service, next);
      });
      this.running.add(round);
    }, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
    this.timers.set(service, timer);
  }

  /** A round if it is due; returns the delay until the next one. */
  private async round(service: MaintenanceService): Promise<number> {
    try {
      // A recorded duty is due by the ledger's clock, so a follower looks again within a minute
      // and a new leader picks the schedule up where the old one left it.
      if (service.leaderOnly && !this.leadership.isLeader) return this.recorder?.records(service) ? Math.min(service.intervalMs, 60_000) : service.intervalMs;
      const wait = await this.untilDue(service);
      if (wait > 0) return wait;
      await this.execute(service);
    } catch (error) {
      this.logger.error({ err: error, service: service.name }, 'maintenance service failed');
    }
    return service.intervalMs;
  }

  /**
   * A recorded duty keeps its schedule across restarts and leader changes: it is due one interval
   * after the newest round in the ledger (whoever ran it), or after this runner started if none
   * was ever recorded. So an hourly pruner runs hourly however often processes restart.
   */
  private async untilDue(service: MaintenanceService): Promise<number> {
    if (!this.recorder?.records(service)) return 0;
    const last = await this.recorder.lastRoundAt(service);
    return Math.max(0, (last ?? this.startedAt) + service.intervalMs - Date.now());
  }

  /** One round, between the start and the end of its run in the ledger when it is recorded. */
  private async execute(service: MaintenanceService): Promise<unknown> {
    const now = Date.now();
    const recorder = this.recorder?.records(service) ? this.recorder : undefined;
    // Not being able to write the record must not stop the duty itself (the ledger may recover).
    const run = await recorder?.begin(service, now).catch((error: unknown) => {
      this.logger.warn({ err: error, service: service.name }, 'could not record the maintenance round');
      return undefined;
    });
    let result: unknown;
    try {
      result = await service.runOnce(now);
    } catch (error) {
      if (run) await recorder!.finish(run, { ok: false, error }).catch(() => {});
      throw error;
    }
    if (run) await recorder!.finish(run, { ok: true, result }).catch((error: unknown) => this.logger.warn({ err: error, service: service.name }, 'could not record the end of the maintenance round'));
    return result;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
