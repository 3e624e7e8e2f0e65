import { resolve } from 'node:path';

/** Where a ledger lives, from a database URL. */
export type LedgerLocation = { kind: 'sqlite'; filename: string } | { kind: 'postgres'; url: string };

/**
 * `postgres://...` (or `postgresql://`) is a PostgreSQL ledger; `sqlite:<file>` (or `file:`)
 * a SQLite file, relative to the working directory. Anything else is refused with a clear message.
 */
export function parseDatabaseUrl(url: string): LedgerLocation {
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url };
  const match = /^(?:sqlite|file):(?:\/\/)?(.+)$/.exec(url);
  if (match) return { kind: 'sqlite', filename: resolve(match[1]!) };
  throw new Error(`DATABASE_URL must look like sqlite:<file> or postgres://user@host/database, got ${JSON.stringify(url)}`);
}

/** The URL fit for a log line: a PostgreSQL password is masked. */
export function describeDatabaseUrl(url: string): string {
  const location = parseDatabaseUrl(url);
  if (location.kind === 'sqlite') return location.filename;
  try {
    const parsed = new URL(location.url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}
