import type { RunLimits } from './types.js';
import { NO_TENANT } from './migrations/common.js';

/**
 * What the SQLite and PostgreSQL stores share for fair claims and ledger-wide limits. The stores
 * read the ledger; the choices made from what they read are here, written once.
 */

/** A waiting run as a fair claim sees it: enough to choose, before the whole row is read. */
export interface WaitingHead {
  /** Where the store finds the row again (SQLite rowid, PostgreSQL id). */
  key: unknown;
  tenant: string;
  runAt: number;
  id: string;
}

/** The tenant a run counts under: tenant-less runs take their turns together, as one tenant. */
export const tenantKey = (tenantId: string | null): string => tenantId ?? NO_TENANT;

/**
 * Round-robin over the tenants' heads, given in turn order (the tenants after the last one
 * served first, wrapping around) and each tenant's in its own order: every tenant's first run,
 * then every tenant's second, and so on; at most `count` of them.
 */
export function roundRobin<H extends WaitingHead>(byTenant: Iterable<H[]>, count: number): H[] {
  const ranked: Array<{ head: H; rank: number; turn: number }> = [];
  let turn = 0;
  for (const heads of byTenant) {
    heads.forEach((head, rank) => ranked.push({ head, rank, turn }));
    turn++;
  }
  ranked.sort((a, b) => a.rank - b.rank || a.turn - b.turn);
  return ranked.slice(0, count).map((r) => r.head);
}

/** How many runs each tenant takes in one round when `need` slots are shared by `tenants` tenants. */
export const share = (need: number, tenants: number): number => Math.max(1, Math.ceil(need / Math.max(1, tenants)));

/**
 * Room left under a definition's limits, as read in the claiming transaction: per tenant (its
 * STARTED runs against `tenantConcurrency`) and in total (starts in the rate window against
 * `rate.max`). Taking a run uses it up, so a claim never goes past either.
 */
export class LimitRoom {
  private readonly running = new Map<string, number>();
  total: number;

  constructor(
    private readonly limits: RunLimits,
    running: Iterable<[string, number]>,
    recentStarts: number,
  ) {
    for (const [tenant, count] of running) this.running.set(tenant, count);
    this.total = limits.rate ? Math.max(0, limits.rate.max - recentStarts) : Infinity;
  }

  /** Tenants already at their limit: a claim leaves their runs out of its query. */
  full(): string[] {
    const limit = this.limits.tenantConcurrency;
    if (limit === null) return [];
    return [...this.running].filter(([tenant, count]) => tenant !== NO_TENANT && count >= limit).map(([tenant]) => tenant);
  }

  /** Runs `tenant` may still start. */
  forTenant(tenant: string): number {
    const limit = this.limits.tenantConcurrency;
    if (limit === null || tenant === NO_TENANT) return this.total;
    return Math.min(this.total, Math.max(0, limit - (this.running.get(tenant) ?? 0)));
  }

  /** Keeps the candidates (in order) that fit, and counts them as started. */
  take<T>(candidates: readonly T[], tenantOf: (candidate: T) => string): T[] {
    const kept: T[] = [];
    for (const candidate of candidates) {
      const tenant = tenantOf(candidate);
      if (this.forTenant(tenant) <= 0) continue;
      kept.push(candidate);
      this.running.set(tenant, (this.running.get(tenant) ?? 0) + 1);
      this.total -= 1;
    }
    return kept;
  }
}

/** Whether a definition's limits need the ledger's counts at all. */
export const limited = (limits: RunLimits | undefined): limits is RunLimits =>
  limits !== undefined && (limits.tenantConcurrency !== null || limits.rate !== null);
