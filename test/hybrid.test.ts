/**
 * The hybrid engine over HTTP, on real Redis and PostgreSQL: light tasks run in the API process,
 * heavy ones (the seed's process_speak_audio) on a BullMQ worker, and each record says which
 * engine ran it. With Redis down, heavy launches are refused (503 + Retry-After) by default, or
 * run locally when the deployment opts into the fallback.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { BullMQEngine } from '../src/engines/bullmq/engine.js';
import { createWorker } from '../src/engines/bullmq/worker.js';
import { HybridEngine, type HybridEngineOptions } from '../src/engines/hybrid.js';
import { serve } from '../src/server.js';
import { PostgresStore } from '../src/store/postgres.js';
import { createTaskyard, type Taskyard } from '../src/taskyard.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { FAST_PEERS, FAST_SWEEPER, REDIS_URL } from './bullmq-cluster.js';
import { stopScaleOutChildren, throwawayRedis, type ThrowawayRedis } from './bullmq-processes.js';
import { TEST_DATABASE_URL, dropSchema, eventually, freshSchema, http, silentLogger } from './helpers.js';

let previousScale: string | undefined;
beforeAll(() => {
  previousScale = process.env.TASKYARD_DEMO_TIME_SCALE;
  process.env.TASKYARD_DEMO_TIME_SCALE = '0.05';
});
afterAll(() => {
  process.env.TASKYARD_DEMO_TIME_SCALE = previousScale;
  stopScaleOutChildren();
});

interface Deployment {
  api: Taskyard;
  worker: Taskyard | null;
  url: string;
  close(): Promise<void>;
}

const open: Deployment[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

/** A hybrid API server and (optionally) one worker on a fresh schema and queue. */
async function deploy(options: { redisUrl?: string; worker?: boolean } & Omit<HybridEngineOptions, 'remote'> = {}): Promise<Deployment> {
  const { redisUrl = REDIS_URL, worker: withWorker = true, ...hybrid } = options;
  const schema = freshSchema();
  const queue = `tyq-${randomBytes(5).toString('hex')}`;
  const store = () => new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 3 });
  const common = { tasks: demoTasks, categoryRules, logger: silentLogger, peers: FAST_PEERS, shutdownGraceMs: 300 };
  const apiStore = store();
  const api = await createTaskyard({
    ...common,
    store: apiStore,
    engine: new HybridEngine({
      local: { concurrency: 5, pollIntervalMs: 50 },
      remote: new BullMQEngine({ redisUrl, queue, worker: false, connectTimeoutMs: 2000, sweeper: FAST_SWEEPER }),
      ...hybrid,
    }),
  }).catch(async (error) => {
    await apiStore.close();
    await dropSchema(schema);
    throw error;
  });
  const worker = withWorker ? await createWorker({ ...common, store: store(), redisUrl, queue, concurrency: 5 }) : null;
  const server = await serve({ yard: api, host: '127.0.0.1', port: 0, apiKeys: [], handleSignals: false });
  const deployment: Deployment = {
    api,
    worker,
    url: server.url,
    async close() {
      await server.app.close();
      await worker?.close();
      await api.close();
      await dropSchema(schema);
    },
  };
  open.push(deployment);
  return deployment;
}

async function launch(url: string, task_type: string, params: Record<string, unknown>) {
  return http(`${url}/api/tasks`, { body: { task_type, params } });
}

async function finished(d: Deployment, id: string) {
  return eventually(async () => {
    const res = await http(`${d.url}/api/tasks/${id}`);
    return ['SUCCESS', 'FAILURE', 'REVOKED'].includes(res.body.state) ? res.body : null;
  }, 20_000, 50);
}

describe('hybrid engine', () => {
  it('runs a light task in the API process and the heavy process_speak_audio on a worker; each record says which engine ran it', async () => {
    const d = await deploy();
    const light = await launch(d.url, 'calculate_rating', { resource_id: 'r-1' });
    const heavy = await launch(d.url, 'process_speak_audio', { resource_id: 'r-1', audio_chunks: ['a', 'b'] });
    expect([light.status, heavy.status]).toEqual([202, 202]);
    const [l, h] = await Promise.all([finished(d, light.body.task_id), finished(d, heavy.body.task_id)]);
    expect(l).toMatchObject({ state: 'SUCCESS', engine: 'local', worker: d.api.identity.id });
    expect(h).toMatchObject({ state: 'SUCCESS', engine: 'bullmq', worker: d.worker!.identity.id });
    expect(h.result).toMatchObject({ status: 'processed', chunks: 2 });
  });

  it('a list of heavy task names (TASKYARD_HEAVY_TASKS) replaces the definitions\' routes', async () => {
    const d = await deploy({ heavyTasks: ['calculate_rating'] });
    const rating = await launch(d.url, 'calculate_rating', { resource_id: 'r-2' });
    const audio = await launch(d.url, 'process_speak_audio', { resource_id: 'r-2' });
    expect((await finished(d, rating.body.task_id)).engine).toBe('bullmq');
    expect((await finished(d, audio.body.task_id)).engine).toBe('local');
    const config = loadConfig({ TASKYARD_ENGINE: 'hybrid', REDIS_URL, TASKYARD_HEAVY_TASKS: ' process_speak_audio, calculate_all_ratings ,' });
    expect(config).toMatchObject({ engine: 'hybrid', heavyTasks: ['process_speak_audio', 'calculate_all_ratings'], redisFallback: 'refuse' });
  });

  describe('with Redis down', () => {
    let redis: ThrowawayRedis;
    beforeAll(async () => {
      redis = await throwawayRedis();
    });
    afterAll(async () => {
      await redis.kill();
    });

    it('refuses heavy launches with 503 and Retry-After by default, writes nothing for them, and still runs light tasks', async () => {
      await redis.start();
      const d = await deploy({ redisUrl: redis.url, worker: false });
      await redis.kill();
      await eventually(() => !(d.api.engine as HybridEngine).remote.available, 5000);
      const refused = await launch(d.url, 'process_speak_audio', { resource_id: 'r-3' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBeTruthy();
      expect(refused.body.detail).toMatch(/Redis is unavailable/);
      const light = await launch(d.url, 'calculate_rating', { resource_id: 'r-3' });
      expect(light.status).toBe(202);
      expect(await finished(d, light.body.task_id)).toMatchObject({ state: 'SUCCESS', engine: 'local' });
      const all = await http(`${d.url}/api/tasks`);
      expect(all.body.tasks.map((t: { name: string }) => t.name)).toEqual(['calculate_rating']);
    });

    it('with TASKYARD_REDIS_FALLBACK=local, heavy launches run in the API process and say so', async () => {
      await redis.start();
      const d = await deploy({ redisUrl: redis.url, worker: false, redisFallback: 'local' });
      await redis.kill();
      await eventually(() => !(d.api.engine as HybridEngine).remote.available, 5000);
      const heavy = await launch(d.url, 'process_speak_audio', { resource_id: 'r-4' });
      expect(heavy.status).toBe(202);
      expect(await finished(d, heavy.body.task_id)).toMatchObject({ state: 'SUCCESS', engine: 'local', worker: d.api.identity.id });
    });

    it('a hybrid or bullmq server will not start without a reachable Redis, and says why', async () => {
      await redis.kill();
      const started = Date.now();
      await expect(deploy({ redisUrl: redis.url, worker: false })).rejects.toThrow(/Redis at redis:\/\/127\.0\.0\.1:\d+\/? is unreachable/);
      expect(Date.now() - started).toBeLessThan(8000);
      expect(() => loadConfig({ TASKYARD_ENGINE: 'bullmq' })).toThrow(/TASKYARD_ENGINE=bullmq needs REDIS_URL/);
      expect(() => loadConfig({ TASKYARD_ENGINE: 'hybrid', REDIS_URL: 'http://x' })).toThrow(/REDIS_URL must be a redis:\/\//);
      expect(() => loadConfig({ TASKYARD_ENGINE: 'celery' })).toThrow(/TASKYARD_ENGINE must be local, bullmq or hybrid/);
      expect(() => loadConfig({ TASKYARD_REDIS_FALLBACK: 'maybe' })).toThrow(/TASKYARD_REDIS_FALLBACK must be refuse or local/);
    });
  });
});
