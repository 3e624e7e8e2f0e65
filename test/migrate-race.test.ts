/** Several processes starting on one fresh SQLite file at the same moment: none fails to migrate. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = `
  const { SqliteStore } = await import('./src/store/sqlite.ts');
  // Every process opens and migrates at the same instant.
  await new Promise((resolve) => setTimeout(resolve, Number(process.argv[2]) - Date.now()));
  const store = new SqliteStore({ filename: process.argv[1] });
  await store.migrate();
  await store.close();
`;

it('four processes migrate one fresh ledger file at once', async () => {
  const temp = tempDir();
  try {
    const file = join(temp.dir, 'taskyard.db');
    const startAt = String(Date.now() + 3000);
    const results = await Promise.all(
      Array.from({ length: 4 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT, file, startAt], { cwd: ROOT });
        let err = '';
        child.stderr.on('data', (c) => (err += c));
        child.once('exit', (code) => resolve({ code, err }));
      })),
    );
    for (const r of results) expect(r.code, r.err).toBe(0);
  } finally {
    temp.cleanup();
  }
}, 30_000);
