/**
 * The package as a user gets it: `npm pack`, installed with zod into a folder outside this
 * repository (so nothing resolves from our node_modules), imported from plain Node with no
 * TypeScript loader.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './built.js';

const run = promisify(execFile);

// Kept between runs: the first install compiles better-sqlite3 from source (minutes); later ones
// only swap the taskyard tarball, which npm re-extracts when its contents change.
const APP = join(tmpdir(), 'taskyard-package-test');
const NPM_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

interface PackedFile {
  path: string;
}

let packedFiles: string[];

beforeAll(async () => {
  await ensureBuilt();
  const packDir = join(APP, 'pack');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  // --ignore-scripts: dist/ is fresh already, `prepare` would only build it again.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: ROOT });
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: PackedFile[] }>;
  packedFiles = packed!.files.map((f) => f.path);
  if (!existsSync(join(APP, 'package.json'))) writeFileSync(join(APP, 'package.json'), '{ "private": true, "type": "module" }\n');
  await run('npm', ['install', ...NPM_FLAGS, `./pack/${packed!.filename}`, 'zod'], { cwd: APP, timeout: 15 * 60_000 });
}, 20 * 60_000);

describe('the npm package', () => {
  it('ships the built code and the CLI, not the sources or tests', () => {
    for (const path of ['dist/index.js', 'dist/index.d.ts', 'dist/engines/local/thread-bootstrap.mjs', 'dist/engines/local/thread-worker.js', 'bin/taskyard.js', 'package.json', 'README.md']) {
      expect(packedFiles).toContain(path);
    }
    expect(packedFiles.filter((path) => !/^(dist|bin)\//.test(path)).sort()).toEqual(['README.md', 'package.json']);
    expect(packedFiles.some((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toBe(false);
  });

  it('works from plain Node: define, submit, wait, in process and in a worker thread, without tsx', async () => {
    expect(existsSync(join(APP, 'node_modules', 'tsx'))).toBe(false);
    const data = join(APP, 'data');
    rmSync(data, { recursive: true, force: true });
    writeFileSync(
      join(APP, 'tasks.mjs'),
      `import { threadId } from 'node:worker_threads';
import { z } from 'zod';
import { defineTask } from 'taskyard';

export const add = defineTask({
  name: 'math.add',
  params: z.object({ a: z.number(), b: z.number() }),
  async run({ a, b }, ctx) {
    await ctx.progress(50, 'adding');
    return { sum: a + b };
  },
});

export const isolated = defineTask({
  name: 'math.isolated',
  isolation: 'thread',
  params: z.object({ n: z.number() }),
  run: ({ n }) => ({ square: n * n, threadId }),
});
`,
    );
    writeFileSync(
      join(APP, 'app.mjs'),
      `import { createTaskyard } from 'taskyard';
import { add, isolated } from './tasks.mjs';

const yard = await createTaskyard({
  tasks: [add, isolated],
  dataDir: 'data',
  tasksModule: new URL('./tasks.mjs', import.meta.url).href,
});
const first = await yard.waitFor(await yard.submit('math.add', { a: 2, b: 3 }));
const second = await yard.waitFor(await yard.submit('math.isolated', { n: 7 }));
await yard.close();
console.log(JSON.stringify({ first: [first.state, first.result, first.progress], second: [second.state, second.result] }));
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, TASKYARD_LOG_LEVEL: 'silent' };
    delete env.NODE_OPTIONS; // no loader of the test runner's may leak into the user's Node
    const { stdout } = await run(process.execPath, ['app.mjs'], { cwd: APP, env, timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(out.first).toEqual(['SUCCESS', { sum: 5 }, 100]);
    expect(out.second[0]).toBe('SUCCESS');
    expect(out.second[1].square).toBe(49);
    expect(out.second[1].threadId).toBeGreaterThan(0);
    expect(readdirSync(data)).toContain('taskyard.db');
  });

  it('resolves its subpaths and types through the exports map', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', "const s = await import('taskyard/server'); const w = await import('taskyard/webhooks'); console.log(typeof s.serve, typeof w.verifySignature)"],
      { cwd: APP },
    );
    expect(stdout.trim()).toBe('function function');

    // A TypeScript user's view: the declarations type-check an app (NodeNext resolution).
    writeFileSync(
      join(APP, 'typed.ts'),
      `import { z } from 'zod';
import { createTaskyard, defineTask, type TaskRecord } from 'taskyard';

const greet = defineTask({ name: 'greet', params: z.object({ who: z.string() }), run: ({ who }) => ({ greeting: 'Hello, ' + who }) });
const yard = await createTaskyard({ tasks: [greet] });
const run: TaskRecord = await yard.waitFor(await yard.submit('greet', { who: 'Ada' }));
// @ts-expect-error: submit takes a task name, not a definition
await yard.submit(greet);
export { run };
`,
    );
    writeFileSync(
      join(APP, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: true, noEmit: true, types: [] },
        files: ['typed.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const check = await run(process.execPath, [tsc, '-p', '.'], { cwd: APP }).catch(
      (error: { stdout: string }) => ({ stdout: error.stdout, failed: true }),
    );
    expect(check.stdout).toBe('');
    expect('failed' in check).toBe(false);
  });

  it('installs a taskyard command that runs without a TypeScript loader', async () => {
    const bin = join(APP, 'node_modules', '.bin', 'taskyard');
    const { stdout } = await run(bin, ['--help'], { cwd: APP });
    expect(stdout).toContain('Usage: taskyard');
    expect(stdout).toContain('serve [options]');
  });
});

describe('the library', () => {
  it('never imports the demo (src/ stands alone)', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.[cm]?[jt]sx?$/.test(entry.name) && /(from\s+|import\s*\(\s*)['"][^'"]*\bdemo\//.test(readFileSync(path, 'utf8'))) {
          offenders.push(relative(ROOT, path));
        }
      }
    };
    walk(join(ROOT, 'src'));
    expect(offenders).toEqual([]);
  });
});
