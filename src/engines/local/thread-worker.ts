import { parentPort, workerData } from 'node:worker_threads';
import { definitionsIn } from '../../tasks-module.js';
import { createContext } from '../execution.js';
import type { ThreadMessage } from './thread.js';

/** Loads the tasks module, finds the definition by name and runs it, talking to the parent. */
const port = parentPort!;
const { tasksModule, record } = workerData as {
  tasksModule: string;
  record: { id: string; name: string; params: unknown; attempt: number; maxAttempts: number; tenantId: string | null };
};
const send = (msg: ThreadMessage) => port.postMessage(msg);
const controller = new AbortController();
port.on('message', (msg: { type: 'abort'; name: string; message: string }) => {
  if (msg.type === 'abort') controller.abort(Object.assign(new Error(msg.message), { name: msg.name }));
});

try {
  const definition = definitionsIn(await import(tasksModule)).find((d) => d.name === record.name);
  if (!definition) throw new Error(`Task ${record.name} is not exported by ${tasksModule}`);
  const ctx = createContext(record, controller.signal, {
    async progress(percent, message) {
      send({ type: 'progress', percent, message });
    },
    log(message, data) {
      send({ type: 'log', message, data });
    },
  });
  const result = await definition.run(record.params, ctx);
  send({ type: 'done', ok: true, result });
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  send({ type: 'done', ok: false, error: { name: e.name, message: e.message, stack: e.stack } });
}
