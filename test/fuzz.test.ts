/**
 * The bad-input sweep: a property-based test that throws random requests at a real server
 * running the demo (its tasks and routers) and asserts that none of them is answered with a
 * 5xx. 500 is only for bugs; every bad input must be a 4xx.
 *
 * Requests are sent with node:http, not fetch, so paths, bodies and headers go out exactly as
 * generated (bodies on GET, malformed percent-encoding, wrong content types).
 */
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoApp, type DemoApp } from '../demo/app.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { fuzzRoutes } from './fuzz-routes.js';
import { eventually, http, startServer, tempDir } from './helpers.js';

const UNKNOWN_ID = '01890000-0000-7000-8000-000000000000';
const COMPANIES = ['73', '4', '123e4567-e89b-12d3-a456-426614174000', '999', ''];

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

interface Received {
  status: number;
  text: string;
  contentType: string | undefined;
}

function send(base: URL, req: Sent): Promise<Received> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const r = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: req.path,
        // Without a length, node sends a GET or DELETE body unframed and the server reads it as a second request.
        headers: req.body === undefined ? req.headers : { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) },
        agent: false,
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'] }),
        );
        res.on('error', reject);
      },
    );
    // A server may answer (e.g. 413) and close before a huge body is fully written.
    r.on('error', (error) => {
      if (!answered) reject(error);
    });
    r.setTimeout(10_000, () => r.destroy(new Error('request timed out')));
    r.end(req.body);
  });
}

/** encodeURIComponent, which throws on lone surrogates; those become hex. */
function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return Buffer.from(text).toString('hex');
  }
}

const JUNK_SEGMENTS = [
  '', '.', '..', '%', '%zz', '%00', '%2F', '%2e%2e', '%E0%A4%A', '%F0%9F%92%A9', '%C0%AF', 'null', 'undefined', '0', '-1', '1e999',
  'NaN', 'statistics', 'types', 'batch', '__proto__', 'constructor', 'prototype', '{task_id}', '%7B%7D', "'%20OR%201=1--",
  'a'.repeat(201), 'b'.repeat(600), 'c'.repeat(5000), UNKNOWN_ID.toUpperCase(), `${UNKNOWN_ID}%00`,
];

const INVALID_JSON = ['{', '{"task_type":', '[1,2', "{'a':1}", 'nul', '\u0000', '{"a":1}}', '{"a":1,}', '"unterminated', '1e99999', '-', '{"a":\u0001}'];

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=utf-16',
  'application/merge-patch+json',
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  'foo',
  ';;;',
  '',
];

const QUERY_KEYS = [
  'task_type', 'category', 'name', 'company_id', 'tenant_id', 'state', 'since', 'until', 'limit', 'cursor', 'terminate', 'hard',
  'status', 'offset', 'page', '__proto__', 'constructor', 'state[]', 'limit[0]',
];

const RAW_QUERIES = ['?', '?&&', '?=', '?==&=', '?a=%zz', '?limit=%', '?__proto__[polluted]=1', '?constructor[prototype][x]=1', '?state=PENDING&state=%00', `?cursor=${'A'.repeat(300)}`, '?limit=1e3', '?since=-8640000000000001', '?until=99999999999999999999'];

// Built once: bodies over the 1 MiB limit, valid and not, and one just under it.
const HUGE_INVALID = 'x'.repeat(1024 * 1024 + 100);
const HUGE_VALID = JSON.stringify({ task_type: 'calculate_rating', params: { resource_id: 'r'.repeat(1024 * 1024 + 100) } });
const BIG_UNDER = JSON.stringify({ task_type: 'calculate_rating', params: { resource_id: 'r'.repeat(900 * 1024) } });

function arbitraries(realIds: string[]) {
  const junkText = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom(...JUNK_SEGMENTS));

  const segment = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...realIds, UNKNOWN_ID) },
    { weight: 1, arbitrary: fc.constantFrom(...COMPANIES.map(encode)) },
    { weight: 3, arbitrary: fc.constantFrom(...JUNK_SEGMENTS) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(encode) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map(encode) },
    // Characters node sends raw and that a URL parser may dislike.
    { weight: 1, arbitrary: fc.stringMatching(/^[!"$&'()*+,;=:@[\]^`{|}~A-Za-z0-9._-]{0,20}$/) },
  );

  const path = fc
    .record({
      template: fc.constantFrom(...fuzzRoutes),
      segments: fc.array(segment, { minLength: 4, maxLength: 4 }),
      trailingSlash: fc.boolean(),
      extra: fc.option(segment, { freq: 8 }),
      // About one path in twenty; drawn by fast-check, so a failing case replays from its seed.
      doubleSlash: fc.oneof({ weight: 19, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    })
    .map(({ template, segments, trailingSlash, extra, doubleSlash }) => {
      let i = 0;
      let p = template.replace(/\{[^}]+\}/g, () => segments[i++ % segments.length]!);
      if (extra !== null) p += `/${extra}`;
      if (trailingSlash) p += '/';
      if (doubleSlash) p = p.replace('/api/', '//api//');
      return p;
    });

  const queryValue = fc.oneof(
    fc.constantFrom('PENDING', 'STARTED', 'SUCCESS', 'FAILURE', 'REVOKED', 'RETRY', 'pending', 'FOO', 'SUCCESS,FAILURE', ',,,'),
    fc.constantFrom('sii', 'maintenance', 'reconciliation', 'sii.sync_documents', 'calculate_rating', 'true', 'false', '1', '0'),
    fc.constantFrom(...COMPANIES),
    fc.integer({ min: -1000, max: 100_000 }).map(String),
    fc.constantFrom('-1', 'abc', '1.5', '1e3', '99999999999999999999999', 'Infinity', 'NaN', ''),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    fc.constantFrom(...realIds).map((id) => Buffer.from(id).toString('base64url')),
    junkText.map(encode),
  );

  const query = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    {
      weight: 5,
      arbitrary: fc
        .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), junkText.map(encode)), queryValue), { minLength: 1, maxLength: 5 })
        .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
    },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_QUERIES) },
  );

  const anyValue = fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    { weight: 2, arbitrary: fc.constantFrom(...COMPANIES) },
    { weight: 2, arbitrary: fc.integer({ min: -3, max: 14 }) },
    { weight: 1, arbitrary: fc.constantFrom(1e20, -1e20, 8.64e15 + 1, Number.MAX_SAFE_INTEGER, 1e308, -0, 0.5) },
    { weight: 1, arbitrary: fc.array(fc.string({ maxLength: 5 }), { maxLength: 4 }) },
  );

  const paramKeys = fc.constantFrom(
    'company_id', 'months', 'month_offset', 'year', 'resource_id', 'audio_chunks', 'user_name', 'max_age_hours', 'ms', 'tenant_id',
    '__proto__', 'constructor', 'x',
  );

  const launchBody = fc.record(
    {
      task_type: fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom(...demoTasks.map((d) => d.name)) },
        { weight: 1, arbitrary: junkText },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
      ),
      name: fc.constantFrom(...demoTasks.map((d) => d.name)),
      params: fc.oneof({ weight: 5, arbitrary: fc.dictionary(paramKeys, anyValue, { maxKeys: 4 }) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }),
      eta: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constantFrom(1e20, -1e20, 8.64e15 + 1, 0, -1, Date.now() + 60_000, 1e308),
        fc.integer(),
        junkText,
      ),
      countdown: fc.oneof(fc.double({ noNaN: true }), fc.integer({ min: -10, max: 5 }), fc.constantFrom(1e308, 31_536_000, 31_536_001)),
      priority: fc.oneof(fc.integer({ min: -2000, max: 2000 }), fc.double({ noNaN: true })),
      queue: fc.oneof(fc.constantFrom('default', 'heavy', ''), junkText),
      idempotency_key: fc.oneof(fc.constantFrom('k1', 'k2', ''), junkText),
    },
    { requiredKeys: [] },
  );

  const stopBody = fc.record(
    { hard: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })), reason: fc.oneof(fc.string({ maxLength: 50 }), fc.constant(null), fc.jsonValue({ maxDepth: 1 })), terminate: fc.boolean() },
    { requiredKeys: [] },
  );

  const json = (value: fc.Arbitrary<unknown>) => value.map((v) => JSON.stringify(v));
  const body = fc.oneof(
    { weight: 3, arbitrary: fc.constant<string | Buffer | undefined>(undefined) },
    { weight: 4, arbitrary: json(launchBody) },
    { weight: 2, arbitrary: json(fc.record({ tasks: fc.oneof(fc.array(launchBody, { maxLength: 5 }), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] })) },
    { weight: 2, arbitrary: json(stopBody) },
    { weight: 2, arbitrary: json(fc.jsonValue({ maxDepth: 3 })) },
    { weight: 2, arbitrary: fc.constantFrom(...INVALID_JSON) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.constantFrom(HUGE_INVALID, HUGE_VALID, BIG_UNDER) },
  );

  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  );

  const auth = fc.oneof(
    { weight: 8, arbitrary: fc.constant<Record<string, string>>({}) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({ authorization: 'Bearer junk' }, { authorization: 'Basic Zm9vOmJhcg==' }, { 'x-api-key': '' }, { authorization: 'Bearer' }) },
  );

  const random = fc
    .record({
      method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
      path,
      query,
      body,
      contentType,
      auth,
    })
    .map(({ method, path, query, body, contentType, auth }): Sent => {
      const headers: Record<string, string> = { ...auth };
      if (body !== undefined && contentType !== undefined) headers['content-type'] = contentType;
      return { method, path: path + query, headers, body };
    });

  // Launches whose params pass the task's schema, with random scheduling options: these reach
  // the engine and the ledger, where a random body seldom gets.
  const validParams = fc.oneof(
    fc.record({ task_type: fc.constant('calculate_rating'), params: fc.record({ resource_id: fc.string({ maxLength: 20 }) }) }),
    fc.record({ task_type: fc.constant('cleanup_sessions'), params: fc.record({ max_age_hours: fc.integer({ min: 1, max: 1000 }) }, { requiredKeys: [] }) }),
    fc.record({ task_type: fc.constant('sii.sync_documents'), params: fc.record({ company_id: fc.constantFrom(...COMPANIES), months: fc.integer({ min: 1, max: 2 }) }) }),
    fc.record({ task_type: fc.constant('sii.sync_f29'), params: fc.record({ company_id: fc.constantFrom(...COMPANIES) }) }),
    fc.record({ task_type: fc.constant('sync_impressions_from_redis'), params: fc.constant({}) }),
  );
  const scheduling = fc.record(
    {
      eta: fc.oneof(
        fc.constantFrom(1e20, -1e20, 8.64e15 + 1, 1e308, -1, 0),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.string({ maxLength: 20 }),
      ),
      countdown: fc.oneof(fc.integer({ min: 0, max: 3600 }), fc.double({ noNaN: true, min: 0, max: 1e9 })),
      priority: fc.integer({ min: -1000, max: 1000 }),
      idempotency_key: fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), fc.string({ minLength: 1, maxLength: 20 })),
    },
    { requiredKeys: [] },
  );
  const validLaunch = fc.tuple(validParams, scheduling).map(([p, s]) => ({ ...s, ...p }));
  const targeted = fc
    .record({
      path: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('/api/tasks', '/api/tasks/batch') }, { weight: 1, arbitrary: path }),
      launches: fc.array(validLaunch, { minLength: 1, maxLength: 4 }),
    })
    .map(({ path, launches }): Sent => ({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(path.endsWith('/batch') ? { tasks: launches } : launches[0]),
    }));

  return fc.oneof({ weight: 3, arbitrary: random }, { weight: 1, arbitrary: targeted });
}

describe('bad-input sweep', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let demo: DemoApp | undefined;
  const temp = tempDir();
  const realIds: string[] = [];

  beforeAll(async () => {
    server = await startServer({
      tasks: demoTasks,
      categoryRules,
      dir: temp.dir,
      plugins: (yard) => {
        demo = createDemoApp(yard, { ledgerFile: join(temp.dir, 'taskyard.db') });
        return demo.plugins;
      },
    });
    // Real ids in every state, so the fuzzer's actions reach past the 404.
    const launch = async (body: unknown) => {
      const res = await http(`${server.url}/api/tasks`, { body });
      expect(res.status).toBe(202);
      realIds.push(res.body.task_id);
      return res.body.task_id as string;
    };
    const done = await launch({ task_type: 'calculate_rating', params: { resource_id: 'r1' } });
    const failed = await launch({ task_type: 'sii.sync_documents', params: { company_id: '999' } });
    await launch({ task_type: 'sii.sync_documents', params: { company_id: '73', months: 12 } });
    await launch({ task_type: 'cleanup_sessions', params: {}, countdown: 3600 });
    const revoked = await launch({ task_type: 'cleanup_sessions', params: {}, countdown: 3600 });
    await http(`${server.url}/api/tasks/${revoked}/stop`, { body: {} });
    await eventually(async () => {
      const states = await Promise.all([done, failed].map(async (id) => (await http(`${server.url}/api/tasks/${id}`)).body.state));
      return states[0] === 'SUCCESS' && states[1] === 'FAILURE';
    });
  });

  afterAll(async () => {
    await server?.close();
    await demo?.close();
    temp.cleanup();
  });

  const shown = (req: Sent) => `${req.method} ${req.path.slice(0, 300)} [${JSON.stringify(req.headers)}] body=${String(req.body ?? '').slice(0, 300)}`;

  it('never answers a random request with a 5xx', async () => {
    const base = new URL(server.url);
    await fc.assert(
      fc.asyncProperty(arbitraries(realIds), async (req) => {
        const res = await send(base, req);
        if (res.status >= 500) throw new Error(`${res.status} for ${shown(req)}\n-> ${res.text.slice(0, 500)}`);
      }),
      { numRuns: 600 },
    );
    // Still healthy afterwards.
    expect((await http(`${server.url}/health`)).status).toBe(200);
    expect((await http(`${server.url}/api/tasks/statistics`)).status).toBe(200);
  }, 60_000);

  it('answers every error in the error model ({"detail": "..."})', async () => {
    const base = new URL(server.url);
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(arbitraries(realIds), async (req) => {
        const res = await send(base, req);
        if (res.status < 400) return;
        errors++;
        let detail: unknown;
        try {
          detail = (JSON.parse(res.text) as { detail?: unknown }).detail;
        } catch {
          /* not JSON */
        }
        if (typeof detail !== 'string') throw new Error(`${res.status} without a detail for ${shown(req)}\n-> ${res.text.slice(0, 300)}`);
      }),
      { numRuns: 300 },
    );
    // Most random requests are bad ones: the check above really ran.
    expect(errors).toBeGreaterThan(100);
  }, 60_000);
});
