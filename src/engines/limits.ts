import type { AnyTaskDefinition } from '../core/definition.js';
import type { RunLimits } from '../store/types.js';

/** A definition's ledger-wide limits as the store checks them; undefined when it has none. */
export function runLimitsOf(definition: AnyTaskDefinition): RunLimits | undefined {
  const { tenantConcurrency, rateLimit } = definition;
  if (tenantConcurrency === null && rateLimit === null) return undefined;
  return { tenantConcurrency, rate: rateLimit && { max: rateLimit.max, windowMs: rateLimit.durationMs } };
}

/** The limits of every definition that has some, by name (for stores starting runs by id). */
export function runLimitsByName(definitions: readonly AnyTaskDefinition[]): Map<string, RunLimits> {
  const byName = new Map<string, RunLimits>();
  for (const definition of definitions) {
    const limits = runLimitsOf(definition);
    if (limits) byName.set(definition.name, limits);
  }
  return byName;
}
