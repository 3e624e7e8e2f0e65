import { lookup } from 'node:dns/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { workerEngine } from '../src/engines/select.js';
import { defineTask } from '../src/core/definition.js';
import { Authenticator, isLoopbackAddress, parseApiKeys, type ApiKey } from '../src/http/auth.js';
import { checkProtectedMode, serve } from '../src/server.js';
import { startYard } from './helpers.js';

const ADMIN = { key: 'admin-key-0123456789abcdef', role: 'admin', tenants: '*' };
const VIEWER = { key: 'viewer-key-0123456789abcde', role: 'viewer', tenants: ['73', 4] };
const keysJson = (...keys: unknown[]) => JSON.stringify(keys);

describe('parseApiKeys', () => {
  it('reads keys, roles and tenants; no value means no keys', () => {
    expect(parseApiKeys(undefined)).toEqual([]);
    expect(parseApiKeys('')).toEqual([]);
    expect(parseApiKeys('  \n')).toEqual([]);
    expect(parseApiKeys(keysJson(ADMIN, VIEWER))).toEqual([ADMIN, { ...VIEWER, tenants: ['73', '4'] }]);
  });

  it('refuses blank and whitespace-only keys, naming the entry', () => {
    for (const key of ['', ' '.repeat(20), '\t\n'.repeat(10)]) {
      expect(() => parseApiKeys(keysJson(ADMIN, { ...VIEWER, key }))).toThrow(/^TASKYARD_API_KEYS is invalid: 1\.key: must not be blank$/);
    }
    // Credentials are sent trimmed, so a key with spaces around it could never be used.
    expect(() => parseApiKeys(keysJson({ ...ADMIN, key: ` ${ADMIN.key} ` }))).toThrow(/0\.key: must not start or end with whitespace/);
  });

  it('refuses a key listed twice, without printing it', () => {
    const twice = () => parseApiKeys(keysJson(ADMIN, VIEWER, { ...VIEWER, role: 'admin', tenants: '*' }));
    expect(twice).toThrow(/^TASKYARD_API_KEYS is invalid: keys 1 and 2 are the same key/);
    expect(twice).not.toThrow(VIEWER.key);
  });

  it('refuses malformed values with the reason', () => {
    expect(() => parseApiKeys('[{')).toThrow(/TASKYARD_API_KEYS is not valid JSON/);
    expect(() => parseApiKeys(keysJson({ ...ADMIN, key: 'short' }))).toThrow(/0\.key: API keys must be at least 16 characters/);
    expect(() => parseApiKeys(keysJson({ ...ADMIN, role: 'root' }))).toThrow(/0\.role/);
    expect(() => parseApiKeys(keysJson({ ...ADMIN, tenants: 'all' }))).toThrow(/0\.tenants/);
    expect(() => parseApiKeys('{"key":"x"}')).toThrow(/TASKYARD_API_KEYS is invalid/);
  });

  it('applies to keys given in code as well', () => {
    expect(() => new Authenticator([ADMIN, ADMIN] as ApiKey[])).toThrow(/apiKeys is invalid: keys 0 and 1 are the same key/);
    expect(() => new Authenticator([{ ...ADMIN, key: ' '.repeat(16) }] as ApiKey[])).toThrow(/must not be blank/);
    expect(new Authenticator([ADMIN, VIEWER] as ApiKey[]).enabled).toBe(true);
  });
});

describe('loadConfig', () => {
  it('has defaults for an empty environment', () => {
    expect(loadConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 8000,
      sqliteFile: resolve('data', 'taskyard.db'),
      apiKeys: [],
      concurrency: 20,
      logLevel: 'info',
      maintenance: {
        pruner: { retention: { SUCCESS: '7d', FAILURE: '30d', REVOKED: '7d' }, byName: {}, interval: '1h', batchSize: 1000 },
        statusSync: { interval: '2m' },
        orphanCleaner: { interval: '24h' },
        recordRounds: true,
      },
    });
  });

  it('reads every setting', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      PORT: '9100',
      TASKYARD_DATA_DIR: 'var/ledger',
      TASKYARD_API_KEYS: keysJson(ADMIN),
      TASKYARD_CONCURRENCY: '4',
      TASKYARD_LOG_LEVEL: 'warn',
      TASKYARD_RETENTION: '12h',
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 9100,
      sqliteFile: resolve('var/ledger', 'taskyard.db'),
      apiKeys: [ADMIN],
      concurrency: 4,
      logLevel: 'warn',
      maintenance: { pruner: { retention: { SUCCESS: '12h', FAILURE: '12h', REVOKED: '12h' } } },
    });
    expect(loadConfig({ DATABASE_URL: 'sqlite:///srv/taskyard/ledger.db' }).sqliteFile).toBe('/srv/taskyard/ledger.db');
  });

  it('stops start-up with a clear message on bad values, API keys included', () => {
    expect(() => loadConfig({ PORT: '80a' })).toThrow(/PORT must be a port number/);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT must be a port number/);
    expect(() => loadConfig({ TASKYARD_CONCURRENCY: '0' })).toThrow(/TASKYARD_CONCURRENCY/);
    expect(() => loadConfig({ TASKYARD_WORKER_PREFETCH: '-1' })).toThrow(/TASKYARD_WORKER_PREFETCH must be a whole number >= 0/);
    expect(loadConfig({ TASKYARD_WORKER_PREFETCH: '0' }).workerPrefetch).toBe(0);
    expect(loadConfig({ TASKYARD_WORKER_PREFETCH: '25' }).workerPrefetch).toBe(25);
    expect(workerEngine(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', TASKYARD_WORKER_PREFETCH: '7' }))).toMatchObject({ prefetch: 7 });
    expect(() => loadConfig({ TASKYARD_RETENTION: 'forever' })).toThrow();
    expect(() => loadConfig({ DATABASE_URL: 'mysql://db/x' })).toThrow(/DATABASE_URL must look like sqlite:<file>/);
    expect(() => loadConfig({ TASKYARD_API_KEYS: keysJson(ADMIN, ADMIN) })).toThrow(/keys 0 and 1 are the same key/);
    expect(() => loadConfig({ TASKYARD_API_KEYS: keysJson({ ...ADMIN, key: ' '.repeat(32) }) })).toThrow(/must not be blank/);
  });

  it('metrics are on unless TASKYARD_METRICS turns them off', () => {
    expect(loadConfig({}).metrics).toBe(true);
    expect(loadConfig({ TASKYARD_METRICS: 'off' }).metrics).toBe(false);
    expect(loadConfig({ TASKYARD_METRICS: 'false' }).metrics).toBe(false);
    expect(loadConfig({ TASKYARD_METRICS: 'on' }).metrics).toBe(true);
    expect(() => loadConfig({ TASKYARD_METRICS: 'sometimes' })).toThrow(/TASKYARD_METRICS must be true or false/);
  });

  it('reads TASKYARD_RATE_LIMIT as requests per window; no limit by default or with off', () => {
    expect(loadConfig({}).rateLimit).toBeNull();
    expect(loadConfig({ TASKYARD_RATE_LIMIT: 'off' }).rateLimit).toBeNull();
    expect(loadConfig({ TASKYARD_RATE_LIMIT: '600/minute' }).rateLimit).toEqual({ max: 600, windowMs: 60_000 });
    expect(loadConfig({ TASKYARD_RATE_LIMIT: ' 20 / Second ' }).rateLimit).toEqual({ max: 20, windowMs: 1000 });
    expect(loadConfig({ TASKYARD_RATE_LIMIT: '5000/hours' }).rateLimit).toEqual({ max: 5000, windowMs: 3_600_000 });
    expect(loadConfig({ TASKYARD_RATE_LIMIT: '50/10s' }).rateLimit).toEqual({ max: 50, windowMs: 10_000 });
    for (const bad of ['600', '0/minute', '-1/minute', '10/fortnight', '10/0s', 'lots/minute', '1.5/minute']) {
      expect(() => loadConfig({ TASKYARD_RATE_LIMIT: bad }), bad).toThrow(/^TASKYARD_RATE_LIMIT must be <requests>\/<window> \(e\.g\. 600\/minute, 50\/10s\) or off, got/);
    }
  });
});

describe('maintenance settings', () => {
  it('reads retention per state and per task, and each duty\'s interval', () => {
    const config = loadConfig({
      TASKYARD_RETENTION: 'SUCCESS=3d, FAILURE=90d, sii.sync_documents:SUCCESS=1d, cleanup_sessions=1h, cleanup_sessions:FAILURE=2d',
      TASKYARD_PRUNE_INTERVAL: '15m',
      TASKYARD_PRUNE_BATCH: '250',
      TASKYARD_STATUS_SYNC_INTERVAL: '30s',
      TASKYARD_ORPHAN_CLEANUP_INTERVAL: '6h',
      TASKYARD_MAINTENANCE_RECORD: 'false',
    });
    expect(config.maintenance).toEqual({
      pruner: {
        retention: { SUCCESS: '3d', FAILURE: '90d', REVOKED: '7d' },
        byName: { 'sii.sync_documents': { SUCCESS: '1d' }, cleanup_sessions: { SUCCESS: '1h', FAILURE: '2d', REVOKED: '1h' } },
        interval: '15m',
        batchSize: 250,
      },
      statusSync: { interval: '30s' },
      orphanCleaner: { interval: '6h' },
      recordRounds: false,
    });
    // A bare duration is every state; later entries win.
    expect(loadConfig({ TASKYARD_RETENTION: '2d,FAILURE=10d' }).maintenance.pruner).toMatchObject({ retention: { SUCCESS: '2d', FAILURE: '10d', REVOKED: '2d' } });
  });

  it('stops start-up with a message naming the variable and the bad entry', () => {
    expect(() => loadConfig({ TASKYARD_RETENTION: 'SUCCESS=7 days' })).toThrow(/TASKYARD_RETENTION: "7 days" is not a duration .* in "SUCCESS=7 days"/);
    expect(() => loadConfig({ TASKYARD_RETENTION: 'sii.sync_documents:DONE=1d' })).toThrow(/TASKYARD_RETENTION: "DONE" is not SUCCESS, FAILURE or REVOKED/);
    expect(() => loadConfig({ TASKYARD_RETENTION: '=1d' })).toThrow(/TASKYARD_RETENTION: a state or task name is missing/);
    expect(() => loadConfig({ TASKYARD_RETENTION: ':SUCCESS=1d' })).toThrow(/TASKYARD_RETENTION: a task name is missing/);
    expect(() => loadConfig({ TASKYARD_RETENTION: ' , ' })).toThrow(/TASKYARD_RETENTION: no retention given/);
    expect(() => loadConfig({ TASKYARD_PRUNE_INTERVAL: '0s' })).toThrow(/TASKYARD_PRUNE_INTERVAL must be a duration like 30s/);
    expect(() => loadConfig({ TASKYARD_STATUS_SYNC_INTERVAL: 'often' })).toThrow(/TASKYARD_STATUS_SYNC_INTERVAL must be a duration/);
    expect(() => loadConfig({ TASKYARD_ORPHAN_CLEANUP_INTERVAL: '-1h' })).toThrow(/TASKYARD_ORPHAN_CLEANUP_INTERVAL must be a duration/);
    expect(() => loadConfig({ TASKYARD_PRUNE_BATCH: '0' })).toThrow(/TASKYARD_PRUNE_BATCH must be a whole number >= 1/);
    expect(() => loadConfig({ TASKYARD_MAINTENANCE_RECORD: 'maybe' })).toThrow(/TASKYARD_MAINTENANCE_RECORD must be true or false/);
  });
});

describe('protected mode', () => {
  const noKeys: ApiKey[] = [];

  it('allows anonymous access on loopback: localhost (resolved for real), IPv4 and IPv6 literals', async () => {
    // What the resolver says localhost is: every address must be loopback for it to count.
    const resolved = await lookup('localhost', { all: true });
    expect(resolved.length).toBeGreaterThan(0);
    expect(resolved.every((a) => isLoopbackAddress(a.address))).toBe(true);
    for (const host of ['localhost', '127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) {
      await expect(checkProtectedMode(host, noKeys), host).resolves.toBe('anonymous-loopback');
    }
  });

  it('refuses to start without keys anywhere else, names that merely start with 127. included', async () => {
    // 127.attacker.example either does not resolve or resolves to an address that is not loopback.
    await expect(checkProtectedMode('127.attacker.example', noKeys)).rejects.toThrow(
      /^Refusing to listen on 127\.attacker\.example without API keys: it (does not resolve|resolves to .* which is not loopback).*TASKYARD_API_KEYS/,
    );
    for (const host of ['0.0.0.0', '::', '10.1.2.3', '::ffff:10.0.0.1', '128.0.0.1']) {
      await expect(checkProtectedMode(host, noKeys), host).rejects.toThrow(
        new RegExp(`^Refusing to listen on ${host.replace(/\./g, '\\.')} without API keys: it is not a loopback address`),
      );
    }
  });

  it('with keys, any host will do', async () => {
    for (const host of ['0.0.0.0', '::', '127.attacker.example']) {
      await expect(checkProtectedMode(host, parseApiKeys(keysJson(ADMIN)))).resolves.toBe('keys');
    }
  });

  it('serve() refuses before listening', async () => {
    const { yard, close } = await startYard({ tasks: [defineTask({ name: 'x.noop', run: () => null })] });
    try {
      await expect(serve({ yard, host: '0.0.0.0', port: 0, apiKeys: noKeys, handleSignals: false })).rejects.toThrow(/Refusing to listen on 0\.0\.0\.0/);
      const server = await serve({ yard, host: 'localhost', port: 0, apiKeys: noKeys, handleSignals: false });
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
      await server.app.close();
    } finally {
      await close();
    }
  });
});

describe('loadConfig: processes and limits', () => {
  it('reads TASKYARD_EXECUTE, the lease, the heartbeat and the size limits', () => {
    const config = loadConfig({
      TASKYARD_EXECUTE: 'false',
      TASKYARD_LEASE_MS: '6000',
      TASKYARD_MAX_PARAMS_BYTES: '1000',
      TASKYARD_MAX_RESULT_BYTES: '2000',
      TASKYARD_MAX_MESSAGE_CHARS: '100',
    });
    expect(config.execute).toBe(false);
    expect(config.peers).toEqual({ leaseMs: 6000, heartbeatMs: 2000 });
    expect(config.limits).toEqual({ maxParamsBytes: 1000, maxResultBytes: 2000, maxMessageChars: 100 });
    expect(loadConfig({}).execute).toBe(true);
  });

  it('stops start-up with the reason on a bad value', () => {
    expect(() => loadConfig({ TASKYARD_EXECUTE: 'maybe' })).toThrow(/TASKYARD_EXECUTE must be true or false/);
    expect(() => loadConfig({ TASKYARD_LEASE_MS: '0' })).toThrow(/TASKYARD_LEASE_MS must be a whole number >= 1/);
    expect(() => loadConfig({ TASKYARD_LEASE_MS: '1000', TASKYARD_HEARTBEAT_MS: '600' })).toThrow(/at most half of TASKYARD_LEASE_MS/);
    expect(() => loadConfig({ TASKYARD_MAX_PARAMS_BYTES: '-5' })).toThrow(/TASKYARD_MAX_PARAMS_BYTES/);
  });
});
