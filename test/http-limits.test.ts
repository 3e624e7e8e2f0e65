/**
 * Request hygiene at the HTTP edge: JSON nesting depth, the configurable body limit, and every
 * 5xx logged with its stack. Real servers; the demo server in its own process for the env vars.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import { defineTask } from '../src/core/definition.js';
import { jsonNestsDeeperThan, MAX_JSON_DEPTH } from '../src/http/json-body.js';
import { serve } from '../src/server.js';
import { eventually, http, startYard, tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const open = defineTask({
  name: 'alpha.open',
  params: z.object({ company_id: z.string() }).passthrough(),
  async run() {
    return 'ok';
  },
});

/** A pino logger whose lines are kept, to see what the server logged. */
function capturedLogger() {
  const lines: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function server(options: { bodyLimit?: number; plugins?: Array<(app: FastifyInstance) => void> } = {}) {
  const { logger, lines } = capturedLogger();
  const yard = await startYard({ tasks: [open], logger });
  const s = await serve({ yard: yard.yard, host: '127.0.0.1', port: 0, apiKeys: [], bodyLimit: options.bodyLimit, plugins: options.plugins, handleSignals: false });
  closers.push(async () => {
    await s.app.close();
    await yard.close();
  });
  return { url: s.url, lines };
}

const nested = (depth: number, leaf = '1') => '['.repeat(depth) + leaf + ']'.repeat(depth);
const json = { 'content-type': 'application/json' };

describe('JSON nesting depth', () => {
  it('counts nesting in one pass, ignoring brackets inside strings', () => {
    expect(jsonNestsDeeperThan(nested(64), 64)).toBe(false);
    expect(jsonNestsDeeperThan(nested(65), 64)).toBe(true);
    expect(jsonNestsDeeperThan('{"a":{"b":[{"c":[]}]}}', 5)).toBe(false);
    expect(jsonNestsDeeperThan('{"a":{"b":[{"c":[]}]}}', 4)).toBe(true);
    expect(jsonNestsDeeperThan(JSON.stringify({ text: '[[[[{{{{'.repeat(1000) }), 2)).toBe(false);
    expect(jsonNestsDeeperThan(JSON.stringify({ text: 'quote \\" then [[[[' }), 1)).toBe(false);
    // 5,000,000 levels: no recursion, so no stack to overflow.
    expect(jsonNestsDeeperThan(nested(5_000_000), 64)).toBe(true);
  });

  it('answers 422 with a clear detail for a body nested 5,000 levels deep, on every route that takes JSON', async () => {
    const { url, lines } = await server();
    for (const deep of [nested(5000), '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)]) {
      for (const path of ['/api/tasks', '/api/tasks/batch']) {
        const res = await http(`${url}${path}`, { raw: `{"task_type":"alpha.open","params":{"company_id":"1","x":${deep}}}`, headers: json });
        expect(res.status, path).toBe(422);
        expect(res.body).toEqual({ detail: `JSON body is nested more than ${MAX_JSON_DEPTH} levels deep` });
      }
    }
    // Nesting within the limit is fine, and so are brackets in strings.
    const ok = await http(`${url}/api/tasks`, { raw: `{"task_type":"alpha.open","params":{"company_id":"1","x":${nested(MAX_JSON_DEPTH - 3)},"s":"${'['.repeat(5000)}"}}`, headers: json });
    expect(ok.status).toBe(202);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe('5xx are logged', () => {
  it('logs every 500 with its stack through the yard logger, whatever the route', async () => {
    const { url, lines } = await server({
      plugins: [
        (app) => {
          app.get('/api/broken', async () => {
            const missing: { field?: { deeper: number } } = {};
            return missing.field!.deeper; // a bug: TypeError
          });
          app.post('/api/broken-async', async () => {
            await new Promise((r) => setTimeout(r, 1));
            throw new RangeError('out of range in a plugin');
          });
        },
      ],
    });
    const first = await http(`${url}/api/broken?x=1`);
    expect(first.status).toBe(500);
    expect(first.body).toEqual({ detail: 'Internal server error' });
    const second = await http(`${url}/api/broken-async`, { body: {} });
    expect(second.status).toBe(500);

    await eventually(() => lines.filter((l) => l.level === 50).length >= 2);
    const errors = lines.filter((l) => l.level === 50);
    expect(errors[0]).toMatchObject({ msg: 'unhandled error', method: 'GET', url: '/api/broken?x=1', err: { type: 'TypeError' } });
    expect(errors[0].err.stack).toMatch(/TypeError: .*deeper[\s\S]*http-limits\.test\.ts/);
    expect(errors[1]).toMatchObject({ method: 'POST', url: '/api/broken-async', err: { type: 'RangeError', message: 'out of range in a plugin' } });
    expect(errors[1].err.stack).toMatch(/RangeError: out of range in a plugin\n\s+at /);
  });
});

describe('body limit', () => {
  it('is configurable; over it is a 413 naming the limit', async () => {
    const { url } = await server({ bodyLimit: 2048 });
    const small = await http(`${url}/api/tasks`, { body: { task_type: 'alpha.open', params: { company_id: '1', blob: 'x'.repeat(1500) } } });
    expect(small.status).toBe(202);
    const big = await http(`${url}/api/tasks`, { body: { task_type: 'alpha.open', params: { company_id: '1', blob: 'x'.repeat(2100) } } });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ detail: 'Request body is larger than 2 KiB' });
  });

  it('TASKYARD_BODY_LIMIT and the stream caps are read from the environment; bad values stop start-up', () => {
    expect(loadConfig({})).toMatchObject({ bodyLimit: 1024 * 1024, sse: { maxStreamsPerKey: 100, maxStreams: 1000 } });
    expect(loadConfig({ TASKYARD_BODY_LIMIT: '65536', TASKYARD_SSE_MAX_PER_KEY: '5', TASKYARD_SSE_MAX_STREAMS: ' 50 ' })).toMatchObject({
      bodyLimit: 65536,
      sse: { maxStreamsPerKey: 5, maxStreams: 50 },
    });
    for (const bad of ['abc', '0', '-1', '1.5', '1e6', '10MB', '99999999999999999999']) {
      expect(() => loadConfig({ TASKYARD_BODY_LIMIT: bad }), bad).toThrow(`TASKYARD_BODY_LIMIT must be a whole number >= 1, got ${JSON.stringify(bad)}`);
    }
    expect(() => loadConfig({ TASKYARD_SSE_MAX_PER_KEY: '0' })).toThrow(/^TASKYARD_SSE_MAX_PER_KEY must be a whole number >= 1/);
    expect(() => loadConfig({ TASKYARD_SSE_MAX_STREAMS: 'many' })).toThrow(/^TASKYARD_SSE_MAX_STREAMS must be a whole number >= 1/);
  });
});

describe('the demo server reads the new settings', () => {
  const temps: Array<() => void> = [];
  afterAll(() => temps.forEach((cleanup) => cleanup()));

  function startDemo(extraEnv: Record<string, string>) {
    const temp = tempDir('taskyard-limits-');
    temps.push(temp.cleanup);
    const env: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', PORT: '0', TASKYARD_DATA_DIR: temp.dir, TASKYARD_LOG_LEVEL: 'info', ...extraEnv };
    delete env.DATABASE_URL;
    delete env.TASKYARD_API_KEYS;
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, output: () => output };
  }

  it('TASKYARD_BODY_LIMIT and TASKYARD_SSE_MAX_PER_KEY take effect', async () => {
    const demo = startDemo({ TASKYARD_BODY_LIMIT: '4096', TASKYARD_SSE_MAX_PER_KEY: '1' });
    try {
      const url = await eventually(() => /listening on (http:\/\/\S+?) /.exec(demo.output())?.[1], 20_000);
      const big = await http(`${url}/api/tasks`, { body: { task_type: 'calculate_all_ratings', params: {}, blob: 'x'.repeat(5000) } });
      expect(big.status).toBe(413);
      expect(big.body.detail).toBe('Request body is larger than 4 KiB');
      const controller = new AbortController();
      const first = await fetch(`${url}/api/tasks/events`, { signal: controller.signal });
      expect(first.status).toBe(200);
      const second = await http(`${url}/api/tasks/events`);
      expect(second.status).toBe(429);
      controller.abort();
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  it('a bad TASKYARD_BODY_LIMIT stops start-up with the reason', async () => {
    const demo = startDemo({ TASKYARD_BODY_LIMIT: '1MB' });
    expect(await demo.exited).toBe(1);
    expect(demo.output()).toContain('TASKYARD_BODY_LIMIT must be a whole number >= 1, got "1MB"');
  });
});
