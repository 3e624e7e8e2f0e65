/**
 * One benchmark worker process: a Taskyard with the local engine on the ledger given in argv
 * (a SQLite file or a PostgreSQL URL). It prints "ready" once started and stops on SIGTERM.
 */
import { pino } from 'pino';
import { defineTask } from '../../src/core/definition.js';
import { LocalEngine } from '../../src/engines/local/engine.js';
import { createStore } from '../../src/store/index.js';
import { createTaskyard } from '../../src/taskyard.js';

const [url, concurrency] = process.argv.slice(2);
const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });
const yard = await createTaskyard({
  tasks: [noop],
  logger: pino({ level: 'silent' }),
  store: createStore(url!),
  engine: new LocalEngine({ concurrency: Number(concurrency ?? 50) }),
});
process.stdout.write('ready\n');
// The yard's timers do not hold the process open (a library must not); this worker must stay up.
const keepAlive = setInterval(() => {}, 1 << 30);
process.once('SIGTERM', () => {
  clearInterval(keepAlive);
  void yard.close().then(() => process.exit(0));
});
