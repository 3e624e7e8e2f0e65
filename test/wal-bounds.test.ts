/**
 * The SQLite ledger's WAL stays bounded: a new user's ledger keeps no WAL once it goes quiet
 * (it once showed 47 MB after 60 runs), and under steady load the WAL file never passes its limit.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defineTask } from '../src/core/definition.js';
import { SqliteStore, WAL_SIZE_LIMIT } from '../src/store/sqlite.js';
import { eventually, startYard, tempDir } from './helpers.js';

const noop = defineTask({ name: 'wal.noop', retry: false, run: () => null });
const walSize = (file: string) => (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0);

describe('the WAL of the SQLite ledger', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function yardOnFile() {
    const temp = tempDir();
    const file = join(temp.dir, 'taskyard.db');
    const { yard, close } = await startYard({ tasks: [noop], dir: temp.dir, store: new SqliteStore({ filename: file }) });
    cleanups.push(async () => {
      await close();
      await temp.cleanup();
    });
    return { yard, file };
  }

  it('is emptied once the ledger goes quiet, after 60 runs one at a time', async () => {
    const { yard, file } = await yardOnFile();
    let peak = 0;
    for (let i = 0; i < 60; i++) {
      await yard.waitFor(await yard.submit('wal.noop'));
      peak = Math.max(peak, walSize(file));
    }
    expect(peak).toBeGreaterThan(0); // the runs did go through the WAL
    await eventually(() => walSize(file) === 0, 5000);
    expect((await yard.stats()).byState.SUCCESS).toBe(60);
  });

  it('stays within its limit under steady load', async () => {
    const { yard, file } = await yardOnFile();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, walSize(file))), 5);
    try {
      for (let round = 0; round < 10; round++) {
        const ids = await yard.submitMany(Array.from({ length: 1000 }, () => ({ name: 'wal.noop' })));
        await Promise.all(ids.map((id) => yard.waitFor(id)));
      }
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, walSize(file));
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(WAL_SIZE_LIMIT);
    await eventually(() => walSize(file) === 0, 5000);
  });
});
