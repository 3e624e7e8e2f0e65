import type { Logger } from '../engines/types.js';
import type { Leadership } from './leadership.js';
import type { MaintenanceService } from './service.js';

/**
 * Runs maintenance services on their intervals. Leadership is claimed (or renewed) before each
 * round of leader-only duties, so they stop within one interval of losing it.
 */
export class MaintenanceRunner {
  private readonly timers = new Map<MaintenanceService, NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = true;

  constructor(
    private readonly services: MaintenanceService[],
    private readonly leadership: Leadership,
    private readonly logger: Logger,
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
    for (const service of this.services) this.schedule(service, 0);
  }

  /** Runs one service now (tests, and "run now" from an operator). */
  async runNow(name: string): Promise<unknown> {
    const service = this.services.find((s) => s.name === name);
    if (!service) throw new Error(`No maintenance service named ${name}`);
    return service.runOnce(Date.now());
  }

  private schedule(service: MaintenanceService, delayMs: number): void {
    if (this.stopped || !this.services.includes(service)) return;
    const timer = setTimeout(() => {
      const round = this.round(service).finally(() => {
        this.running.delete(round);
        this.schedule(service, service.intervalMs);
      });
      this.running.add(round);
    }, delayMs);
    timer.unref();
    this.timers.set(service, timer);
  }

  private async round(service: MaintenanceService): Promise<void> {
    try {
      if (service.leaderOnly && !this.leadership.isLeader) return;
      await service.runOnce(Date.now());
    } catch (error) {
      this.logger.error({ err: error, service: service.name }, 'maintenance service failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
