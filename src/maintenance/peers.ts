import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { WorkerRow } from '../store/types.js';

/** This process's identity among the peers sharing a ledger: host, pid and a random suffix. */
export interface ProcessIdentity {
  id: string;
  host: string;
  pid: number;
}

export function processIdentity(prefix = 'taskyard'): ProcessIdentity {
  const host = hostname();
  return { id: `${prefix}@${host}:${process.pid}:${randomBytes(3).toString('hex')}`, host, pid: process.pid };
}

/** Whether a pid on this host is a live process (signal 0 checks without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A worker is dead once its lease has expired, or at once when it ran on this host and its pid
 * is gone: a restart on the same machine need not wait out the lease of the process it replaces.
 */
export function isDead(worker: WorkerRow, now: number, host: string): boolean {
  if (worker.expiresAt < now) return true;
  return worker.host === host && worker.pid !== process.pid && !pidAlive(worker.pid);
}
