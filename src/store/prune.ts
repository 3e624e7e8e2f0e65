import { firstIdAt } from '../core/ids.js';
import type { PruneRule } from './types.js';

/** How a dialect writes a parameter, and a parameter holding a list of names as a row set. */
export interface PruneDialect {
  param(value: unknown): string;
  nameSet(names: readonly string[]): string;
}

/**
 * The runs a prune rule selects, as a WHERE clause both ledgers share. A run finishes after it
 * was created and ids begin with the creation time, so `id` below the cutoff's first id is implied:
 * it lets the (state, id) index stop at the cutoff instead of walking every run of the state.
 */
export function pruneWhere(rule: PruneRule, dialect: PruneDialect): string {
  const conditions = [
    `state = ${dialect.param(rule.state)}`,
    `finished_at IS NOT NULL AND finished_at < ${dialect.param(rule.before)}`,
    `id < ${dialect.param(firstIdAt(rule.before))}`,
  ];
  if (rule.names) conditions.push(`name IN ${dialect.nameSet(rule.names)}`);
  if (rule.exceptNames?.length) conditions.push(`name NOT IN ${dialect.nameSet(rule.exceptNames)}`);
  return conditions.join(' AND ');
}
