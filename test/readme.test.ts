/**
 * The README's library example, run as written against the built package, so it cannot rot:
 * the first ```ts block under "## Library API" is type-checked and run from a folder in which
 * `import 'taskyard'` resolves through the package's own exports map to dist/.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './built.js';

const run = promisify(execFile);

/** The first fenced block of `language` after the `heading` line. */
export function codeBlockAfter(markdown: string, heading: string, language: string): string {
  const start = markdown.split('\n').findIndex((line) => line.trim() === heading);
  if (start < 0) throw new Error(`README has no "${heading}" heading`);
  const rest = markdown.split('\n').slice(start + 1).join('\n');
  const match = new RegExp('^```' + language + '\\n([\\s\\S]*?)^```$', 'm').exec(rest);
  if (!match) throw new Error(`No \`\`\`${language} block under "${heading}"`);
  return match[1]!;
}

describe('README library example', () => {
  let dir: string;
  let example: string;

  beforeAll(async () => {
    await ensureBuilt();
    example = codeBlockAfter(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Library API', 'ts');
    // Inside the repository with no package.json of its own, so this package's is the nearest:
    // 'taskyard' resolves to it by self-reference (its exports map), and zod resolves too.
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(ROOT, '.tmp', 'readme-'));
    writeFileSync(join(dir, 'example.ts'), example);
  }, 180_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is extracted from the Library API section', () => {
    expect(example).toContain("from 'taskyard'");
    expect(example).toContain('createTaskyard');
  });

  it('type-checks against the package declarations', async () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: true, noEmit: true, types: ['node'] },
        files: ['example.ts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', '.'], { cwd: dir }).then(
      () => ({ ok: true, output: '' }),
      (error: { stdout: string }) => ({ ok: false, output: error.stdout }),
    );
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });

  it('runs to the end and does what its comments say', async () => {
    // tsx only strips the types (Node 20 cannot); everything imported is the built JavaScript.
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'example.ts'], {
      cwd: dir,
      env: { ...process.env, TASKYARD_LOG_LEVEL: 'silent' },
      timeout: 60_000,
    });
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    expect(lines).toContain('SUCCESS { success: true, months: 3 }');
    expect(lines).toContain('enqueued started progress progress progress log succeeded');
    expect(lines).toContain('REVOKED');
    expect(lines.filter((line) => line.startsWith('succeeded '))).toHaveLength(2);
    expect(lines.slice(lines.indexOf('REVOKED') + 1)).toContain('SUCCESS');
    expect(lines.at(-1)).toBe('2 2');
  });
});
