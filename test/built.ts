/**
 * Tests of the built package (the CLI, `npm pack`, the README example) need dist/ to match src/.
 * `npm install` builds it; this rebuilds it when a source file is newer, once at a time across the
 * parallel test files (a lock directory), so editing src/ and running one test file just works.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MARKER = join(ROOT, 'dist', 'index.js');
const LOCK = join(ROOT, '.tmp', 'build.lock');
const STALE_LOCK_MS = 5 * 60_000;

/** Newest modification time under a folder (the dashboard app is built separately, by Vite). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== join(ROOT, 'src', 'dashboard')) newest = Math.max(newest, newestMtime(path));
    } else {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

const isFresh = (): boolean =>
  existsSync(MARKER) && statSync(MARKER).mtimeMs >= Math.max(newestMtime(join(ROOT, 'src')), statSync(join(ROOT, 'tsconfig.build.json')).mtimeMs);

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // Another test file is building; a lock left by a killed run is cleared after a while.
      if (existsSync(LOCK) && Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Builds the library into dist/ unless it is already up to date. */
export async function ensureBuilt(): Promise<void> {
  if (isFresh()) return;
  await withLock(async () => {
    if (isFresh()) return;
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const started = Date.now() - 1000; // file times may be coarser than the clock
    try {
      await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT });
    } catch (error) {
      // tsc still emits on type errors; `npm test` reports those through `tsc --noEmit`.
      const emitted = existsSync(MARKER) && statSync(MARKER).mtimeMs >= started;
      if (!emitted) throw new Error(`npm run build failed:\n${(error as { stdout?: string }).stdout ?? (error as Error).message}`);
    }
  });
}
