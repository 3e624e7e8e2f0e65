import type { TaskStore } from '../store/types.js';
import type { Leadership } from './leadership.js';
import type { ProcessIdentity } from './peers.js';
import type { MaintenanceService } from './service.js';

export interface HeartbeatOptions {
  engine: string;
  concurrency: number;
  /** How long the row (and so every run this process owns) stays valid without a heartbeat. */
  leaseMs: number;
  intervalMs: number;
}

/**
 * Every process renews its worker row, which is the lease on every run it owns, and takes or
 * renews leadership. One small write per interval, however many runs are in flight.
 */
export class Heartbeat implements MaintenanceService {
  readonly name = 'heartbeat';
  readonly leaderOnly = false;
  readonly intervalMs: number;
  private readonly startedAt = Date.now();
  /** Leader roles this process runs for: maintenance, and one per durable consumer it hosts. */
  private readonly roles = new Set<Leadership>();

  constructor(
    private readonly store: TaskStore,
    private readonly me: ProcessIdentity,
    leadership: Leadership,
    private readonly options: HeartbeatOptions,
  ) {
    this.intervalMs = options.intervalMs;
    this.roles.add(leadership);
  }

  addRole(role: Leadership): void {
    this.roles.add(role);
  }

  removeRole(role: Leadership): void {
    this.roles.delete(role);
  }

  async runOnce(now: number): Promise<void> {
    await this.store.heartbeat({
      id: this.me.id,
      host: this.me.host,
      pid: this.me.pid,
      engine: this.options.engine,
      concurrency: this.options.concurrency,
      startedAt: this.startedAt,
      heartbeatAt: now,
      expiresAt: now + this.options.leaseMs,
    });
    for (const role of this.roles) await role.claim(now);
  }

  /** On a clean stop: the row and the roles go, so nobody waits out their leases. */
  async leave(): Promise<void> {
    for (const role of this.roles) await role.resign();
    await this.store.removeWorker(this.me.id);
  }
}
