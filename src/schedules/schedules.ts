import { conflict, TaskyardError } from '../core/errors.js';
import type { TaskRegistry } from '../core/registry.js';
import type { TaskState } from '../core/states.js';
import type { ScheduleChange, ScheduleRow, TaskStore, TenantScope } from '../store/types.js';
import { definitionOf, sameTiming, scheduleRowOf, timingOf, type ScheduleDefinition } from './definition.js';
import { nextTicks } from './timing.js';

/** How many upcoming ticks a schedule shows. */
const NEXT_RUNS = 5;

/** A schedule as callers see it: its row, its next ticks, and how its last run went. */
export interface ScheduleView extends ScheduleRow {
  /** The next ticks (none while disabled). */
  nextRuns: number[];
  lastRun: { taskId: string; at: number | null; state: TaskState | null } | null;
}

/** What an update may change; `enabled` alone is allowed on a schedule defined in code. */
export type ScheduleUpdate = Partial<Omit<ScheduleDefinition, 'name'>>;

const scheduleNotFound = (name: string) => new TaskyardError('task_not_found', `Schedule ${name} not found`);

const inScope = (row: ScheduleRow, scope: TenantScope) => scope === '*' || (row.tenantId !== null && scope.includes(row.tenantId));

/**
 * Schedules: defined in code (upserted at start, source `code`) or through the API (source
 * `api`), kept in the ledger, fired by the leader's scheduler (maintenance/scheduler.ts).
 *
 * Tenant scope works as for runs: a schedule belongs to the tenant of the runs it launches, and
 * a key limited to some tenants sees only their schedules (tenant-less ones are for unlimited
 * keys); anything else is a 404.
 */
export class Schedules {
  constructor(
    private readonly store: TaskStore,
    private readonly registry: TaskRegistry,
    private readonly clock: () => number = Date.now,
  ) {}

  async list(scope: TenantScope = '*'): Promise<ScheduleView[]> {
    return this.views((await this.store.schedules()).filter((row) => inScope(row, scope)));
  }

  async get(name: string, scope: TenantScope = '*'): Promise<ScheduleView> {
    const [view] = await this.views([await this.row(name, scope)]);
    return view!;
  }

  /** Adds a schedule through the API; 409 when the name is taken. */
  async create(definition: ScheduleDefinition, scope: TenantScope = '*'): Promise<ScheduleView> {
    const row = scheduleRowOf(definition, this.registry, { now: this.clock(), source: 'api', internal: false });
    assertMayWrite(row, scope);
    if (!(await this.store.insertSchedule(row))) throw conflict(`Schedule ${row.name} already exists`);
    return this.get(row.name);
  }

  /**
   * Changes a schedule. A code schedule may only be enabled or disabled here (its definition
   * lives in the code, which would undo any other change at the next start): 409 otherwise.
   */
  async update(name: string, update: ScheduleUpdate, scope: TenantScope = '*'): Promise<ScheduleView> {
    const current = await this.row(name, scope);
    const defined = Object.entries(update).filter(([, v]) => v !== undefined).map(([k]) => k);
    if (current.source === 'code' && defined.some((field) => field !== 'enabled')) {
      throw conflict(`Schedule ${name} is defined in code; change it there (only enabled can be set through the API)`);
    }
    // One timing replaces the other: `every` on a cron schedule drops its cron and time zone.
    const base = definitionOf(current);
    if (update.every !== undefined) Object.assign(base, { cron: undefined, timezone: undefined });
    if (update.cron !== undefined) base.every = undefined;
    const checked = scheduleRowOf({ ...base, ...withoutUndefined(update), name }, this.registry, {
      now: this.clock(),
      source: current.source,
      internal: current.source === 'code',
    });
    assertMayWrite(checked, scope);
    const change = changeFrom(current, checked, this.clock());
    if (!(await this.store.updateSchedule(name, change))) throw scheduleNotFound(name);
    return this.get(name);
  }

  /** Deletes an API schedule; a code schedule is a 409 (the code would bring it back). */
  async remove(name: string, scope: TenantScope = '*'): Promise<void> {
    const row = await this.row(name, scope);
    if (row.source === 'code') throw conflict(`Schedule ${name} is defined in code; remove it there, or disable it (PATCH enabled: false)`);
    if (!(await this.store.deleteSchedule(name))) throw scheduleNotFound(name);
  }

  /**
   * Stores the schedules defined in code: new ones are added, changed ones updated (keeping
   * where they have got to, and the API's enabled switch), and code schedules the code no
   * longer defines are removed. An API schedule of the same name becomes a code schedule.
   */
  async syncCode(definitions: readonly ScheduleDefinition[]): Promise<void> {
    const now = this.clock();
    const rows = definitions.map((d) => scheduleRowOf(d, this.registry, { now, source: 'code', internal: true }));
    const names = new Set<string>();
    for (const row of rows) {
      if (names.has(row.name)) throw new Error(`Schedule ${row.name} is defined twice`);
      names.add(row.name);
    }
    for (const row of rows) {
      if (await this.store.insertSchedule(row)) continue;
      const current = await this.store.schedule(row.name);
      if (!current) continue; // deleted meanwhile: the next start adds it again
      const change = changeFrom(current, { ...row, enabled: current.enabled }, now);
      if (Object.keys(change).length > 1) await this.store.updateSchedule(row.name, change);
    }
    for (const stale of (await this.store.schedules()).filter((r) => r.source === 'code' && !names.has(r.name))) {
      await this.store.deleteSchedule(stale.name);
    }
  }

  private async row(name: string, scope: TenantScope): Promise<ScheduleRow> {
    const row = await this.store.schedule(name);
    if (!row || !inScope(row, scope)) throw scheduleNotFound(name);
    return row;
  }

  private async views(rows: ScheduleRow[]): Promise<ScheduleView[]> {
    const now = this.clock();
    const ids = rows.map((r) => r.lastTaskId).filter((id): id is string => id !== null);
    const runs = new Map((await this.store.getMany(ids)).map((r) => [r.id, r]));
    return rows.map((row) => {
      const run = row.lastTaskId === null ? undefined : runs.get(row.lastTaskId);
      return {
        ...row,
        nextRuns: row.enabled ? nextTicks(timingOf(row), Math.max(now, row.lastTick), NEXT_RUNS) : [],
        // A pruned run is still named; its state is no longer known.
        lastRun: row.lastTaskId === null ? null : { taskId: row.lastTaskId, at: row.lastRunAt, state: run?.state ?? null },
      };
    });
  }
}

/** A key limited to some tenants may only make schedules that launch runs for them. */
function assertMayWrite(row: ScheduleRow, scope: TenantScope): void {
  if (inScope(row, scope)) return;
  throw new TaskyardError(
    'forbidden',
    row.tenantId === null ? 'This key can only schedule tasks that belong to one of its tenants' : `This key cannot schedule tasks for tenant ${row.tenantId}`,
  );
}

/**
 * The fields of `next` that differ from `current`. A schedule whose timing changes, or that is
 * switched back on, starts again from now: ticks it was not due to run are not "missed".
 */
function changeFrom(current: ScheduleRow, next: ScheduleRow, now: number): ScheduleChange {
  const change: ScheduleChange = { updatedAt: now };
  const fields = ['task', 'tenantId', 'cron', 'every', 'timezone', 'overlap', 'catchUp', 'enabled', 'source'] as const;
  for (const field of fields) if (current[field] !== next[field]) Object.assign(change, { [field]: next[field] });
  if (JSON.stringify(current.params) !== JSON.stringify(next.params)) change.params = next.params;
  if (!sameTiming(current, next) || (next.enabled && !current.enabled)) change.lastTick = Math.max(current.lastTick, now);
  return change;
}

const withoutUndefined = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
