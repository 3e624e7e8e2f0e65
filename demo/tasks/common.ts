import type { TaskContext } from '../../src/core/definition.js';
import { NonRetryableError } from '../../src/core/errors.js';
import { findCompany, type DemoCompany } from '../companies.js';
import { sleep } from './time.js';

/** The seeds fail this way; retrying would not make the company appear. */
export function requireCompany(id: string | number): DemoCompany {
  const company = findCompany(id);
  if (!company) throw new NonRetryableError('Company not found');
  return company;
}

/** A simulated unit of work: a progress message and how long it takes at scale 1. */
export interface Step {
  message: string;
  ms: number;
}

/**
 * Runs the steps in order, reporting progress after each one, scaled into [from, to]
 * so a task made of several phases (e.g. one per company) still climbs steadily to 100.
 */
export async function simulate(ctx: TaskContext, steps: readonly Step[], from = 0, to = 100): Promise<void> {
  for (const [i, step] of steps.entries()) {
    await sleep(step.ms, ctx.signal);
    await ctx.progress(Math.round(from + ((to - from) * (i + 1)) / steps.length), step.message);
  }
  if (steps.length === 0) await ctx.progress(to);
}

/** FNV-1a: stable numbers from strings, so a company's "data" looks the same on every run. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A stable pseudo-random integer in [min, max] for a key. */
export function pick(key: string, min: number, max: number): number {
  return min + (hash(key) % (max - min + 1));
}
