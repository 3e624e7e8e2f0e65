import { afterEach, describe, expect, it } from 'vitest';
import { defineTask } from '../src/core/definition.js';
import { Pruner } from '../src/maintenance/pruner.js';
import { silentLogger, startYard } from './helpers.js';

const quick = defineTask({ name: 'quick', async run() { return 'ok'; } });
const parked = defineTask({ name: 'parked', async run() { return 'never'; } });

let close: (() => Promise<void>) | undefined;
afterEach(async () => close?.());

describe('pruner', () => {
  it('deletes finished runs past retention with their timeline, and never touches live runs', async () => {
    const started = await startYard({ tasks: [quick, parked], pruner: false });
    close = started.close;
    const { yard } = started;
    const done = await Promise.all(Array.from({ length: 5 }, () => yard.submit('quick')));
    for (const id of done) await yard.waitFor(id);
    const waiting = await yard.submit('parked', {}, { countdown: 3600 });

    const pruner = new Pruner(yard.store, silentLogger, { retention: '1h', batchSize: 2 });
    // Nothing is an hour old yet.
    expect(await pruner.runOnce()).toMatchObject({ deleted: 0 });
    // Two hours from now, every finished run is past retention; batches of 2 still get them all.
    expect(await pruner.runOnce(Date.now() + 2 * 3_600_000)).toMatchObject({ deleted: 5 });

    for (const id of done) await expect(yard.get(id)).rejects.toMatchObject({ code: 'task_not_found' });
    expect(await yard.store.events({ afterSeq: 0, limit: 100, taskId: done[0] }, '*')).toEqual([]);
    expect((await yard.get(waiting)).state).toBe('PENDING');
    const stats = await yard.stats();
    expect(stats.byState.SUCCESS).toBe(0);
    expect(stats.byState.PENDING).toBe(1);
  });
});
