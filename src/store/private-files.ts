import { chmodSync, closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensureDirectory } from './data-dir.js';

/**
 * A ledger holds every run's params and results, so its files are the owner's alone: 0600 files
 * in a 0700 directory. Only what we create is tightened (chmod, so the umask cannot loosen it);
 * an existing directory or database keeps the modes its owner chose.
 */

/** Creates the database file (and its directory) owner-only. Returns false if the file existed. */
export function createPrivateDatabaseFile(filename: string): boolean {
  const dir = dirname(filename);
  if (ensureDirectory(dir, 0o700)) chmodSync(dir, 0o700);
  let fd: number;
  try {
    fd = openSync(filename, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  closeSync(fd);
  chmodSync(filename, 0o600);
  return true;
}

/** SQLite's `-wal` and `-shm` files hold the same data as the database: owner-only too. */
export function restrictSqliteSidecars(filename: string): void {
  for (const suffix of ['-wal', '-shm']) {
    try {
      chmodSync(filename + suffix, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}
