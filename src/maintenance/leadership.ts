import type { TaskStore } from '../store/types.js';
import { isDead, type ProcessIdentity } from './peers.js';

export const MAINTENANCE_ROLE = 'maintenance';

/**
 * Leader election through the ledger itself: a lease row per role, taken when free or expired
 * and renewed by its holder. A holder whose process is known dead (same host, pid gone) is
 * replaced at once; otherwise a new leader takes over within one lease.
 */
export class Leadership {
  private leading = false;

  constructor(
    private readonly store: TaskStore,
    private readonly me: ProcessIdentity,
    private readonly ttlMs: number,
    private readonly role = MAINTENANCE_ROLE,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** Takes or renews the lease; returns whether this process leads now. */
  async claim(now = Date.now()): Promise<boolean> {
    const dead = (await this.store.workers()).filter((w) => isDead(w, now, this.me.host)).map((w) => w.id);
    this.leading = await this.store.lead(this.role, this.me.id, this.ttlMs, now, dead);
    return this.leading;
  }

  async resign(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    await this.store.resign(this.role, this.me.id);
  }
}
