import { toMs, type Duration } from '../core/duration.js';
import type { FinishedState, PruneRule } from '../store/types.js';

export const FINISHED_STATES: readonly FinishedState[] = ['SUCCESS', 'FAILURE', 'REVOKED'];

export type RetentionByState = Partial<Record<FinishedState, Duration>>;
/** How long finished runs are kept, per state; one duration means the same for every state. */
export type Retention = Duration | RetentionByState;

/** A retention policy: per state, with per-definition overrides (e.g. `{ 'sii.sync_documents': { SUCCESS: '1d' } }`). */
export interface RetentionPolicy {
  /** Default: SUCCESS and REVOKED 7 days, FAILURE 30 days (failures are what people come back to read). */
  retention?: Retention;
  /** Per definition name; a state left out falls back to `retention`. */
  byName?: Record<string, Retention>;
}

export const DEFAULT_RETENTION: Record<FinishedState, Duration> = { SUCCESS: '7d', FAILURE: '30d', REVOKED: '7d' };

type Resolved = Record<FinishedState, number>;

function resolve(retention: Retention | undefined, fallback: Record<FinishedState, Duration>): Resolved {
  const given = typeof retention === 'object' ? retention : retention === undefined ? {} : { SUCCESS: retention, FAILURE: retention, REVOKED: retention };
  const out = {} as Resolved;
  for (const state of FINISHED_STATES) {
    const value = given[state] ?? fallback[state];
    if (value === undefined) throw new Error(`retention: no duration for ${state}`);
    out[state] = toMs(value);
  }
  for (const key of Object.keys(given)) {
    if (!FINISHED_STATES.includes(key as FinishedState)) throw new Error(`retention: ${key} is not a finished state (SUCCESS, FAILURE or REVOKED)`);
  }
  return out;
}

/**
 * The policy as store rules, in milliseconds. Checked once, so a bad duration stops start-up
 * rather than the first round an hour later.
 */
export class RetentionRules {
  private readonly defaults: Resolved;
  private readonly byName: Array<[string, Resolved]>;

  constructor(policy: RetentionPolicy = {}) {
    this.defaults = resolve(policy.retention, DEFAULT_RETENTION);
    const defaults = Object.fromEntries(FINISHED_STATES.map((s) => [s, this.defaults[s]])) as Resolved;
    this.byName = Object.entries(policy.byName ?? {}).map(([name, retention]) => [name, resolve(retention, defaults)]);
  }

  /**
   * One rule per state for the definitions without an override, and one per state and distinct
   * retention for those with one (names sharing a retention share a rule).
   */
  at(now: number): PruneRule[] {
    const rules: PruneRule[] = [];
    const overridden = this.byName.map(([name]) => name);
    for (const state of FINISHED_STATES) {
      rules.push({ state, before: now - this.defaults[state], ...(overridden.length > 0 ? { exceptNames: overridden } : {}) });
      const namesByMs = new Map<number, string[]>();
      for (const [name, resolved] of this.byName) namesByMs.set(resolved[state], [...(namesByMs.get(resolved[state]) ?? []), name]);
      for (const [ms, names] of namesByMs) rules.push({ state, before: now - ms, names });
    }
    return rules;
  }
}

/**
 * Reads `TASKYARD_RETENTION`: one duration for every state (`7d`), or comma-separated entries
 * `STATE=duration` and `name:STATE=duration` / `name=duration` for one definition, e.g.
 * `SUCCESS=7d,FAILURE=30d,REVOKED=7d,sii.sync_documents:SUCCESS=1d`. A bare duration sets every
 * state; later entries win.
 */
export function parseRetention(spec: string, variable = 'TASKYARD_RETENTION'): { retention: RetentionByState; byName: Record<string, RetentionByState> } {
  const fail = (entry: string, why: string): never => {
    throw new Error(`${variable}: ${why} in ${JSON.stringify(entry)} (e.g. SUCCESS=7d,FAILURE=30d,sii.sync_documents:SUCCESS=1d)`);
  };
  const duration = (entry: string, value: string): string => {
    try {
      toMs(value);
    } catch {
      fail(entry, `${JSON.stringify(value)} is not a duration like 30m, 12h or 7d`);
    }
    return value.trim();
  };
  const retention: RetentionByState = {};
  const byName: Record<string, RetentionByState> = {};
  const entries = spec.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) fail(spec, 'no retention given');
  for (const entry of entries) {
    const eq = entry.lastIndexOf('=');
    if (eq < 0) {
      const value = duration(entry, entry);
      for (const state of FINISHED_STATES) retention[state] = value;
      continue;
    }
    const key = entry.slice(0, eq).trim();
    const value = duration(entry, entry.slice(eq + 1));
    if (key === '') fail(entry, 'a state or task name is missing');
    if (FINISHED_STATES.includes(key as FinishedState)) {
      retention[key as FinishedState] = value;
      continue;
    }
    const colon = key.lastIndexOf(':');
    const name = colon < 0 ? key : key.slice(0, colon).trim();
    const state = colon < 0 ? null : key.slice(colon + 1).trim();
    if (name === '') fail(entry, 'a task name is missing');
    if (state !== null && !FINISHED_STATES.includes(state as FinishedState)) fail(entry, `${JSON.stringify(state)} is not SUCCESS, FAILURE or REVOKED`);
    const own = (byName[name] ??= {});
    for (const s of state === null ? FINISHED_STATES : [state as FinishedState]) own[s] = value;
  }
  return { retention, byName };
}
