import { z } from 'zod';
import { defineTask } from '../../src/core/definition.js';
import { pick, simulate } from './common.js';

// The migration guide's tasks. Its HEAVY_TASKS set decides `route: 'heavy'`.

export const processSpeakAudioTask = defineTask({
  name: 'process_speak_audio',
  category: 'maintenance',
  displayName: 'Procesando audio',
  description: 'Speech-to-text, evaluation and text-to-speech for a recorded answer',
  route: 'heavy',
  params: z.object({
    resource_id: z.string().describe('Resource (session) id'),
    audio_chunks: z.array(z.string()).default([]).describe('Audio chunks, base64'),
    user_name: z.string().optional().describe("Speaker's name, for the feedback"),
  }),
  async run(p, ctx) {
    await simulate(ctx, [
      // At least one transcription step, so an empty upload still looks like work.
      ...Array.from({ length: Math.max(1, p.audio_chunks.length) }, (_, i) => ({
        message: `Transcribing chunk ${i + 1}`,
        ms: 400,
      })),
      { message: 'Evaluating answer', ms: 800 },
      { message: 'Synthesizing feedback audio', ms: 600 },
    ]);
    return {
      resource_id: p.resource_id,
      status: 'processed',
      chunks: p.audio_chunks.length,
      user_name: p.user_name ?? null,
      score: pick(`${p.resource_id}:score`, 40, 100),
    };
  },
});

export const calculateRatingTask = defineTask({
  name: 'calculate_rating',
  category: 'maintenance',
  displayName: 'Calculando calificación',
  description: "Recalculates one resource's rating",
  params: z.object({ resource_id: z.string().describe('Resource id') }),
  async run(p, ctx) {
    await simulate(ctx, [
      { message: 'Loading votes', ms: 200 },
      { message: 'Computing rating', ms: 200 },
    ]);
    return {
      resource_id: p.resource_id,
      rating: pick(`${p.resource_id}:rating`, 10, 50) / 10,
      votes: pick(`${p.resource_id}:votes`, 0, 500),
    };
  },
});

export const calculateAllRatingsTask = defineTask({
  name: 'calculate_all_ratings',
  category: 'maintenance',
  displayName: 'Calculando todas las calificaciones',
  description: 'Recalculates every resource rating (bulk)',
  route: 'heavy',
  async run(_p, ctx) {
    const batches = 10;
    await simulate(ctx, Array.from({ length: batches }, (_, i) => ({ message: `Batch ${i + 1}/${batches}`, ms: 500 })));
    return { batches, updated: pick('all_ratings', 500, 5_000) };
  },
});

export const syncImpressionsFromRedisTask = defineTask({
  name: 'sync_impressions_from_redis',
  category: 'maintenance',
  displayName: 'Sincronizando impresiones',
  description: 'Flushes impression counters from Redis to the database',
  route: 'heavy',
  async run(_p, ctx) {
    await simulate(ctx, [
      { message: 'Scanning keys', ms: 500 },
      { message: 'Writing counters', ms: 1500 },
      { message: 'Deleting flushed keys', ms: 500 },
    ]);
    return { keys: pick('impressions:keys', 100, 1_000), impressions: pick('impressions:count', 10_000, 90_000) };
  },
});

export const cleanupSessionsTask = defineTask({
  name: 'cleanup_sessions',
  category: 'maintenance',
  displayName: 'Limpiando sesiones',
  description: 'Deletes sessions older than max_age_hours',
  params: z.object({
    max_age_hours: z.number().int().min(1).default(24).describe('Delete sessions older than this many hours'),
  }),
  async run(p, ctx) {
    await simulate(ctx, [
      { message: 'Finding expired sessions', ms: 300 },
      { message: 'Deleting', ms: 700 },
    ]);
    return { max_age_hours: p.max_age_hours, deleted: pick(`sessions:${p.max_age_hours}`, 0, 300) };
  },
});

/**
 * Burns CPU without ever yielding to the event loop or looking at its signal: the case only a
 * hard cancel or hard timeout can stop, which is why it runs in a worker thread.
 */
export const cpuBurnTask = defineTask({
  name: 'demo.cpu_burn',
  displayName: 'CPU burn (hard-kill demo)',
  description: 'Busy-loops for `ms` milliseconds, ignoring cancellation, to demonstrate hard cancel and hard timeout',
  isolation: 'thread',
  // Re-running a burn that was killed on purpose would only burn more.
  retry: false,
  params: z.object({
    ms: z.number().int().min(1).max(600_000).default(1000).describe('How long to burn the CPU, in milliseconds (not scaled)'),
  }),
  async run(p, ctx) {
    const start = Date.now();
    let reported = 0;
    let spins = 0;
    for (;;) {
      const elapsed = Date.now() - start;
      if (elapsed >= p.ms) break;
      const decile = Math.floor((elapsed / p.ms) * 10) * 10;
      if (decile > reported) {
        reported = decile;
        // Awaiting a resolved promise only drains microtasks: the signal's abort event never runs.
        await ctx.progress(decile, `Burned ${elapsed} ms`);
      }
      spins++;
    }
    await ctx.progress(100, `Burned ${p.ms} ms`);
    return { ms: p.ms, spins };
  },
});

export const maintenanceTasks = [
  processSpeakAudioTask,
  calculateRatingTask,
  calculateAllRatingsTask,
  syncImpressionsFromRedisTask,
  cleanupSessionsTask,
  cpuBurnTask,
];
