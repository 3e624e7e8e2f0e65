import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Creates `dir` (and missing parents) with `mode`, one level at a time. Node's recursive mkdir
 * loops forever on some paths (e.g. under /proc, where mkdir says ENOENT for a parent that
 * exists), so an unusable data directory would hang start-up instead of failing. Every failure
 * here names the path and why. Returns whether `dir` itself was created.
 */
export function ensureDirectory(dir: string, mode = 0o700): boolean {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let path = target; ; path = dirname(path)) {
    const kind = kindOf(path);
    if (kind === 'directory') break;
    if (kind === 'other') throw new Error(`Cannot use ${target} as the data directory: ${path} exists and is not a directory`);
    if (dirname(path) === path) throw new Error(`Cannot use ${target} as the data directory: no existing parent`);
    missing.unshift(path);
  }
  for (const path of missing) {
    try {
      mkdirSync(path, { mode });
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      if (code === 'EEXIST' && kindOf(path) === 'directory') continue;
      throw new Error(`Cannot create the data directory ${target}: ${code ?? message} at ${path}`);
    }
  }
  return missing.length > 0;
}

function kindOf(path: string): 'directory' | 'other' | 'missing' {
  try {
    return statSync(path).isDirectory() ? 'directory' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new Error(`Cannot use ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
