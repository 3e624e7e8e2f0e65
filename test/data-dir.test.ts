/**
 * An unusable data directory stops start-up within seconds, with an error that names the path.
 * The real server is started as a child process, as `npm start` would run it.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureDirectory } from '../src/store/data-dir.js';
import { tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function startWith(dataDir: string): Promise<{ code: number | null; output: string; ms: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env, TASKYARD_DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0' };
  delete env.DATABASE_URL;
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - t0 });
    }),
  );
}

describe('an unusable data directory', () => {
  it('under /proc (where recursive mkdir used to spin forever) exits at once, naming the path', async () => {
    const result = await startWith('/proc/taskyard-nope');
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(10_000);
    expect(result.output).toContain('/proc/taskyard-nope');
  }, 20_000);

  it('below a regular file exits at once, naming the path', async () => {
    const temp = tempDir();
    const file = join(temp.dir, 'not-a-dir');
    writeFileSync(file, 'x');
    try {
      const result = await startWith(join(file, 'data'));
      expect(result.code).toBe(1);
      expect(result.output).toContain(file);
    } finally {
      temp.cleanup();
    }
  }, 20_000);

  it('ensureDirectory creates missing levels owner-only and reports what it did', () => {
    const temp = tempDir();
    try {
      const dir = join(temp.dir, 'a', 'b');
      expect(ensureDirectory(dir)).toBe(true);
      expect(ensureDirectory(dir)).toBe(false);
      expect(() => ensureDirectory('/proc/x/y')).toThrow(/\/proc\/x\/y/);
    } finally {
      temp.cleanup();
    }
  });
});
