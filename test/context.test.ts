/** One task context for every engine and isolation: the same answers in process and in a thread. */
import { afterEach, expect, it } from 'vitest';
import { contextProbe, contextProbeIsolated } from './fixtures/context-tasks.js';
import { startYard } from './helpers.js';

let close: (() => Promise<void>) | undefined;
afterEach(async () => close?.());

it('progress() answers NaN, Infinity and out-of-range values the same in process and in a worker thread', async () => {
  const started = await startYard({
    tasks: [contextProbe, contextProbeIsolated],
    tasksModule: new URL('./fixtures/context-tasks.ts', import.meta.url).href,
  });
  close = started.close;
  const { yard } = started;
  const inProcess = await yard.waitFor(await yard.submit('ctx.probe'), 10_000);
  const inThread = await yard.waitFor(await yard.submit('ctx.probe_isolated'), 10_000);
  expect(inProcess.result).toEqual(['rejected: progress must be a number', 'rejected: progress must be a number', 'ok', 'ok']);
  expect(inThread.result).toEqual(inProcess.result);
});
