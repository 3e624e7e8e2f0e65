import type { z } from 'zod';
import type { AnyTaskDefinition } from './definition.js';
import { invalidParams, unknownTaskType, type FieldError } from './errors.js';

/** Maps name prefixes to categories, e.g. every `accounting.tasks.*` is `reconciliation`. */
export interface CategoryRule {
  prefix: string;
  category: string;
}

export class TaskRegistry {
  private readonly byName = new Map<string, AnyTaskDefinition>();

  constructor(
    definitions: readonly AnyTaskDefinition[] = [],
    private readonly categoryRules: readonly CategoryRule[] = [],
  ) {
    for (const definition of definitions) this.register(definition);
  }

  register(definition: AnyTaskDefinition): void {
    if (this.byName.has(definition.name)) throw new Error(`Task ${definition.name} is defined twice`);
    this.byName.set(definition.name, definition);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): AnyTaskDefinition {
    const definition = this.byName.get(name);
    if (!definition) throw unknownTaskType(name);
    return definition;
  }

  all(): AnyTaskDefinition[] {
    return [...this.byName.values()];
  }

  /** The definitions an API may list and launch: all but Taskyard's internal ones. */
  publicDefinitions(): AnyTaskDefinition[] {
    return this.all().filter((d) => !d.internal);
  }

  /** Like `get`, for callers outside the library: an internal definition is reported unknown. */
  getPublic(name: string): AnyTaskDefinition {
    const definition = this.get(name);
    if (definition.internal) throw unknownTaskType(name);
    return definition;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Explicit category first, then the longest matching prefix rule, then the first name segment. */
  categoryOf(definition: AnyTaskDefinition): string {
    if (definition.category) return definition.category;
    let best: CategoryRule | undefined;
    for (const rule of this.categoryRules) {
      if (definition.name.startsWith(rule.prefix) && (!best || rule.prefix.length > best.prefix.length)) best = rule;
    }
    if (best) return best.category;
    const dot = definition.name.indexOf('.');
    return dot > 0 ? definition.name.slice(0, dot) : 'general';
  }

  /** Validates and applies defaults. Throws `invalid_params` with one entry per failing field. */
  parseParams(definition: AnyTaskDefinition, params: unknown): unknown {
    const parsed = (definition.params as z.ZodType).safeParse(params ?? {}, { reportInput: true });
    if (parsed.success) return parsed.data;
    const errors: FieldError[] = parsed.error.issues.map((issue) => ({
      field: issue.path.map(String).join('.'),
      message: describeIssue(issue),
    }));
    throw invalidParams(errors);
  }
}

/**
 * A zod issue in words that name the real problem: "is required" only when the value is absent,
 * else what was expected and received. Needs issues parsed with `reportInput: true`.
 */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const absent = (issue as { input?: unknown }).input === undefined;
  if (absent && (issue.code === 'invalid_type' || issue.code === 'invalid_union' || issue.code === 'invalid_value')) return 'is required';
  if (issue.code === 'invalid_type') return issue.message.replace(/^Invalid input: /, '');
  return issue.message;
}
