import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, type AnyTaskDefinition } from '../src/core/definition.js';
import type { TaskRecord } from '../src/core/record.js';
import type { Taskyard } from '../src/taskyard.js';
import {
  createWebhookTask,
  installWebhooks,
  MIN_WEBHOOK_SECRET_LENGTH,
  signatureHeader,
  verifySignature,
  WEBHOOK_TASK_NAME,
  webhookConfigFromEnv,
  webhookTask,
} from '../src/webhooks/index.js';
import { grantOf } from '../src/webhooks/task.js';
import { eventually, http, startServer, startYard, tempDir } from './helpers.js';

const SECRET = 'whsec_test_0123456789abcdef';
/** Short backoff for tests: 5 attempts, 20 ms doubling, no jitter. */
const fastDelivery = () => createWebhookTask({ retry: { delay: 20, maxDelay: 100, jitter: 0 } });

// ---- receivers: real HTTP servers on 127.0.0.1 -------------------------------------------

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

async function receiver(answer: (res: ServerResponse, n: number) => void): Promise<Receiver> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(res, received.length);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const ok = () => receiver((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));

/** A URL where nothing listens. */
async function downUrl(): Promise<string> {
  const r = await receiver(() => {});
  await r.close();
  return r.url;
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});
const track = <T extends { close(): Promise<void> | void }>(x: T): T => {
  closers.push(() => x.close());
  return x;
};

// ---- tasks -------------------------------------------------------------------------------

const job = (name: string, webhook?: string) =>
  defineTask({
    name,
    category: 'jobs',
    webhook,
    retry: false,
    params: z.object({ company_id: z.string().default('73'), fail: z.boolean().default(false) }),
    async run(params) {
      if (params.fail) throw new Error('boom');
      return { done: name };
    },
  });

async function deliveries(yard: Taskyard, url?: string): Promise<TaskRecord[]> {
  const page = await yard.list({ names: [WEBHOOK_TASK_NAME], limit: 500 });
  return page.tasks.filter((t) => !url || (t.params as { url: string }).url === url);
}

// ---- tests -------------------------------------------------------------------------------

describe('webhooks', () => {
  it('POSTs a signed event when a task succeeds, to the global and the definition URL', async () => {
    const global = track(await ok());
    const own = track(await ok());
    const delivery = fastDelivery();
    const server = track(await startServer({ tasks: [job('jobs.plain'), job('jobs.hooked', own.url), delivery] }));
    const uninstall = installWebhooks(server.yard, { url: global.url, secret: SECRET });
    closers.push(uninstall);

    const launched = await http(`${server.url}/api/tasks`, { body: { task_type: 'jobs.hooked', params: { company_id: '4' } } });
    expect(launched.status).toBe(202);
    const id = launched.body.task_id as string;
    await eventually(() => global.received.length === 1 && own.received.length === 1);

    for (const r of [global, own]) {
      const { headers, body } = r.received[0]!;
      expect(headers['content-type']).toBe('application/json');
      expect(headers['x-taskyard-event']).toBe('succeeded');
      expect(verifySignature(SECRET, headers['x-taskyard-signature'] as string, body)).toBe(true);
      expect(JSON.parse(body)).toEqual({
        event: 'succeeded',
        task_id: id,
        name: 'jobs.hooked',
        task_type: 'jobs',
        state: 'SUCCESS',
        tenant_id: '4',
        result: { done: 'jobs.hooked' },
        error: null,
        finished_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        delivery_id: headers['x-taskyard-delivery'],
      });
      // The delivery id a receiver dedupes on is signed: a replay cannot swap in a fresh one.
      const renamed = body.replace(String(headers['x-taskyard-delivery']), '00000000-0000-7000-8000-000000000000');
      expect(verifySignature(SECRET, headers['x-taskyard-signature'] as string, renamed)).toBe(false);
    }
    // The delivery is a ledger run; its id is the delivery id the receiver saw.
    const runs = (await eventually(async () => {
      const all = await deliveries(server.yard);
      return all.length === 2 && all.every((d) => d.state === 'SUCCESS') ? all : null;
    }))!;
    expect(runs.map((d) => d.id).sort()).toEqual([global, own].map((r) => r.received[0]!.headers['x-taskyard-delivery']).sort());
    expect(runs.every((d) => d.category === 'taskyard' && d.tenantId === null)).toBe(true);

    // A task without its own URL notifies the global one only; deliveries never notify about themselves.
    const plain = await server.yard.submit('jobs.plain', {});
    await eventually(() => global.received.some((r) => JSON.parse(r.body).task_id === plain));
    await new Promise((r) => setTimeout(r, 200));
    expect(global.received).toHaveLength(2);
    expect(own.received).toHaveLength(1);

    // Failures are delivered too, with the error.
    const failing = await server.yard.submit('jobs.plain', { fail: true });
    const failed = (await eventually(() => global.received.find((r) => JSON.parse(r.body).task_id === failing)))!;
    expect(failed.headers['x-taskyard-event']).toBe('failed');
    expect(JSON.parse(failed.body)).toMatchObject({ event: 'failed', state: 'FAILURE', error: 'boom', result: null });

    // And cancels.
    const later = await server.yard.submit('jobs.plain', {}, { countdown: 60 });
    await server.yard.cancel(later, { reason: 'not needed' });
    const revoked = (await eventually(() => global.received.find((r) => JSON.parse(r.body).task_id === later)))!;
    expect(revoked.headers['x-taskyard-event']).toBe('revoked');
    expect(JSON.parse(revoked.body)).toMatchObject({ event: 'revoked', state: 'REVOKED', error: 'Revoked: not needed' });
  });

  it('verifySignature rejects a wrong secret, a changed body, a stale timestamp and junk', () => {
    const body = JSON.stringify({ event: 'succeeded', task_id: 'x' });
    const header = signatureHeader(SECRET, body);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, header, body)).toBe(true);
    expect(verifySignature(SECRET, header, Buffer.from(body))).toBe(true);
    expect(verifySignature('another-secret', header, body)).toBe(false);
    expect(verifySignature(SECRET, header, body.replace('x', 'y'))).toBe(false);
    const old = signatureHeader(SECRET, body, Math.floor(Date.now() / 1000) - 301);
    expect(verifySignature(SECRET, old, body)).toBe(false);
    expect(verifySignature(SECRET, old, body, 600)).toBe(true);
    // Secret rotation: any matching v1 is enough.
    const rotated = `${header},v1=${'0'.repeat(64)}`;
    expect(verifySignature(SECRET, rotated, body)).toBe(true);
    for (const junk of [undefined, '', 'v1=abc', 't=1', 't=abc,v1=zz', header.replace(/v1=/, 'v0=')]) {
      expect(verifySignature(SECRET, junk, body)).toBe(false);
    }
  });

  it('retries a receiver that is down, times out or answers 500, then records the delivery as FAILURE; tasks are never held up', async () => {
    const slow = track(await receiver(() => {})); // never answers
    const broken = track(await receiver((res) => res.writeHead(500).end('database on fire')));
    const tooMany = track(await receiver((res, n) => (n < 3 ? res.writeHead(429).end() : res.writeHead(204).end())));
    const gone = track(await receiver((res) => res.writeHead(404).end('no such hook')));
    const down = await downUrl();
    const tasks: AnyTaskDefinition[] = [
      job('jobs.to_down', down),
      job('jobs.to_slow', slow.url),
      job('jobs.to_500', broken.url),
      job('jobs.to_429', tooMany.url),
      job('jobs.to_404', gone.url),
      fastDelivery(),
    ];
    const server = track(await startServer({ tasks }));
    closers.push(installWebhooks(server.yard, { secret: SECRET, timeoutMs: 150 }));

    const started = Date.now();
    const ids = await server.yard.submitMany(tasks.slice(0, 5).map((t) => ({ name: t.name, params: {} })));
    const records = await Promise.all(ids.map((id) => server.yard.waitFor(id, 2000)));
    expect(records.map((r) => r.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
    expect(Date.now() - started).toBeLessThan(1500);

    const settled = async (url: string) => {
      const [d] = await deliveries(server.yard, url);
      return d && (d.state === 'SUCCESS' || d.state === 'FAILURE') ? d : null;
    };
    const [toDown, toSlow, to500, to429, to404] = await Promise.all(
      [down, slow.url, broken.url, tooMany.url, gone.url].map((url) => eventually(() => settled(url), 20_000)),
    );

    for (const d of [toDown!, toSlow!, to500!]) {
      expect(d.state).toBe('FAILURE');
      expect(d.attempt).toBe(5);
      expect(d.maxAttempts).toBe(5);
    }
    expect(toDown!.error).toMatch(/ECONNREFUSED/);
    expect(toSlow!.error).toMatch(/timed out after 150 ms/);
    expect(to500!.error).toMatch(/answered 500: database on fire/);
    expect(slow.received).toHaveLength(5);
    expect(broken.received).toHaveLength(5);
    // Each attempt is signed afresh and carries the same delivery id.
    expect(new Set(broken.received.map((r) => r.headers['x-taskyard-delivery']))).toEqual(new Set([to500!.id]));
    expect(broken.received.map((r) => r.headers['x-taskyard-attempt'])).toEqual(['1', '2', '3', '4', '5']);
    expect(broken.received.every((r) => verifySignature(SECRET, r.headers['x-taskyard-signature'] as string, r.body))).toBe(true);
    // The engine's timeline shows the retries.
    const timeline = await server.yard.store.events({ afterSeq: 0, limit: 100, taskId: to500!.id }, '*');
    expect(timeline.filter((e) => e.type === 'retry')).toHaveLength(4);
    expect(timeline.at(-1)!.type).toBe('failed');
    // A failed delivery is not retried through the API: that would send another signed request.
    const again = await http(`${server.url}/api/tasks/${to500!.id}/retry`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/internal/);
    await new Promise((r) => setTimeout(r, 200));
    expect(broken.received).toHaveLength(5);

    // 429 means "later": retried until it is accepted. 404 will not change: failed at once.
    expect(to429!.state).toBe('SUCCESS');
    expect(to429!.attempt).toBe(3);
    expect(to404!.state).toBe('FAILURE');
    expect(to404!.attempt).toBe(1);
    expect(gone.received).toHaveLength(1);
  });

  it('keeps a pending delivery across a restart', async () => {
    const { dir, cleanup } = tempDir();
    closers.push(cleanup);
    let up = false;
    const flaky = track(await receiver((res) => res.writeHead(up ? 200 : 503).end()));
    const tasks = () => [job('jobs.durable'), createWebhookTask({ retry: { delay: 400, maxDelay: 400, jitter: 0 } })];

    const first = await startYard({ tasks: tasks(), dir });
    installWebhooks(first.yard, { url: flaky.url, secret: SECRET, timeoutMs: 500 });
    const id = await first.yard.submit('jobs.durable', {});
    await eventually(async () => (await deliveries(first.yard))[0]?.state === 'RETRY');
    await first.yard.close(); // the delivery waits in the ledger

    up = true;
    const second = await startYard({ tasks: tasks(), dir });
    closers.push(() => second.yard.close());
    installWebhooks(second.yard, { url: flaky.url, secret: SECRET, timeoutMs: 500 });
    const [delivery] = await deliveries(second.yard);
    const done = await second.yard.waitFor(delivery!.id, 10_000);
    expect(done.state).toBe('SUCCESS');
    expect(done.attempt).toBe(2);
    const last = flaky.received.at(-1)!;
    expect(JSON.parse(last.body)).toMatchObject({ task_id: id, event: 'succeeded' });
    expect(last.headers['x-taskyard-delivery']).toBe(delivery!.id);
  });

  it('delivers only the chosen events, refuses hand-made deliveries, and checks its set-up', async () => {
    const hook = track(await ok());
    const delivery = fastDelivery();
    const { yard, close } = await startYard({ tasks: [job('jobs.some'), delivery] });
    closers.push(close);

    expect(() => installWebhooks(yard, { secret: '' })).toThrow(/secret/);
    expect(() => installWebhooks(yard, { secret: SECRET, url: 'ftp://example.com' })).toThrow(/http/);
    const uninstall = installWebhooks(yard, { url: hook.url, secret: SECRET, events: ['failed'] });
    expect(() => installWebhooks(yard, { url: hook.url, secret: 'another-secret-0123456789' })).toThrow(/another secret/);

    const good = await yard.submit('jobs.some', {});
    const bad = await yard.submit('jobs.some', { fail: true });
    await Promise.all([yard.waitFor(good), yard.waitFor(bad)]);
    await eventually(() => hook.received.length === 1);
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ task_id: bad, event: 'failed' });

    // Someone allowed to launch tasks cannot make Taskyard sign a forged event.
    const forged = await yard.submit(WEBHOOK_TASK_NAME, { url: hook.url, event: 'succeeded', payload: { task_id: 'forged' } });
    const record = await yard.waitFor(forged);
    expect(record.state).toBe('FAILURE');
    expect(record.attempt).toBe(1);
    expect(record.error).toMatch(/installWebhooks/);
    await new Promise((r) => setTimeout(r, 100));
    expect(hook.received).toHaveLength(1);

    // Uninstalled: no more deliveries.
    uninstall();
    const after = await yard.submit('jobs.some', { fail: true });
    await yard.waitFor(after);
    await new Promise((r) => setTimeout(r, 150));
    expect(hook.received).toHaveLength(1);

    // A yard without the delivery task cannot install webhooks.
    const bare = await startYard({ tasks: [job('jobs.other')] });
    closers.push(bare.close);
    expect(() => installWebhooks(bare.yard, { secret: SECRET })).toThrow(/taskyard\.webhook.*webhookTask/s);
    expect(webhookTask.name).toBe(WEBHOOK_TASK_NAME);
  });

  it('reads its configuration from the environment', () => {
    expect(webhookConfigFromEnv({})).toBeNull();
    expect(webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: SECRET })).toEqual({ url: undefined, secret: SECRET });
    expect(webhookConfigFromEnv({ TASKYARD_WEBHOOK_URL: 'https://hooks.example.com/t', TASKYARD_WEBHOOK_SECRET: SECRET })).toEqual({
      url: 'https://hooks.example.com/t',
      secret: SECRET,
    });
    expect(
      webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: SECRET, TASKYARD_WEBHOOK_EVENTS: 'failed, revoked', TASKYARD_WEBHOOK_TIMEOUT_MS: '2500' }),
    ).toEqual({ url: undefined, secret: SECRET, events: ['failed', 'revoked'], timeoutMs: 2500 });
    expect(() => webhookConfigFromEnv({ TASKYARD_WEBHOOK_URL: 'https://hooks.example.com/t' })).toThrow(/TASKYARD_WEBHOOK_SECRET/);
    expect(() => webhookConfigFromEnv({ TASKYARD_WEBHOOK_URL: 'not a url', TASKYARD_WEBHOOK_SECRET: SECRET })).toThrow(/not a URL/);
    expect(() => webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: SECRET, TASKYARD_WEBHOOK_EVENTS: 'started' })).toThrow(/unknown started/);
  });

  it('refuses secrets shorter than 16 characters', async () => {
    expect(MIN_WEBHOOK_SECRET_LENGTH).toBe(16);
    const { yard, close } = await startYard({ tasks: [job('jobs.short'), fastDelivery()] });
    closers.push(close);
    for (const secret of ['s3cret', '0123456789abcde', ' '.repeat(20)]) {
      expect(() => installWebhooks(yard, { secret })).toThrow(/installWebhooks: .*(at least 16 characters|secret is required)/);
      expect(() => webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: secret, TASKYARD_WEBHOOK_URL: 'https://hooks.example.com/t' })).toThrow(
        /TASKYARD_WEBHOOK_(SECRET: the secret must be at least 16 characters|URL is set but TASKYARD_WEBHOOK_SECRET is not)/,
      );
    }
    expect(webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: '0123456789abcdef' })).toEqual({ url: undefined, secret: '0123456789abcdef' });
    installWebhooks(yard, { secret: '0123456789abcdef' })();
  });

  it('refuses link-local and metadata addresses unless explicitly allowed', async () => {
    const refused = [
      'http://169.254.169.254/latest/meta-data/',
      'http://169.254.0.1:8080/hook',
      'http://[fd00:ec2::254]/latest',
      'http://[fd12:3456::1]/hook',
      'http://[fe80::1]/hook',
      'http://[::ffff:169.254.169.254]/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://METADATA.google.internal./',
      'http://100.100.100.200/latest/meta-data/',
    ];
    const { yard, close } = await startYard({ tasks: [job('jobs.any'), fastDelivery()] });
    closers.push(close);
    for (const url of refused) {
      expect(() => installWebhooks(yard, { secret: SECRET, url }), url).toThrow(/refused: .*(link-local or metadata|metadata service).*allowLinkLocal/);
      expect(() => webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: SECRET, TASKYARD_WEBHOOK_URL: url }), url).toThrow(
        /TASKYARD_WEBHOOK_URL is refused.*TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL=true/,
      );
      // Said explicitly, it is allowed.
      installWebhooks(yard, { secret: SECRET, url, allowLinkLocal: true })();
      expect(webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: SECRET, TASKYARD_WEBHOOK_URL: url, TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL: 'true' })).toMatchObject({
        url,
        allowLinkLocal: true,
      });
    }
    // Loopback and private networks are ordinary receivers.
    for (const url of ['http://127.0.0.1:9000/hook', 'http://10.0.0.5/hook', 'http://[::1]:9000/hook', 'https://hooks.example.com/t']) {
      installWebhooks(yard, { secret: SECRET, url })();
    }
    expect(() => webhookConfigFromEnv({ TASKYARD_WEBHOOK_SECRET: SECRET, TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL: 'maybe' })).toThrow(/true or false/);

    // A definition's own URL is checked the same way.
    const metadata = await startYard({ tasks: [job('jobs.meta', 'http://169.254.169.254/'), fastDelivery()] });
    closers.push(metadata.close);
    expect(() => installWebhooks(metadata.yard, { secret: SECRET })).toThrow(/webhook of jobs\.meta is refused/);
    installWebhooks(metadata.yard, { secret: SECRET, allowLinkLocal: true })();
  });

  it('checks the address again when it delivers, and refuses a link-local one without sending', async () => {
    const { yard, close } = await startYard({ tasks: [job('jobs.any'), fastDelivery()] });
    closers.push(close);
    closers.push(installWebhooks(yard, { secret: SECRET }));
    // A delivery whose URL was never checked at start-up (as if a name came to resolve there).
    const url = 'http://169.254.169.254/latest/meta-data/iam/';
    const payload = { event: 'succeeded', task_id: 'x' };
    const id = await yard.submit(WEBHOOK_TASK_NAME, { url, event: 'succeeded', payload, grant: grantOf(SECRET, 'succeeded', url, payload) });
    const record = await yard.waitFor(id, 5000);
    expect(record.state).toBe('FAILURE');
    expect(record.attempt).toBe(1);
    expect(record.error).toMatch(/Refused webhook .*169\.254\.169\.254 is a link-local or metadata address/);
  });
});
