import { parentPort, workerData } from 'node:worker_threads';
import type { AnyTaskDefinition, TaskContext } from '../../core/definition.js';
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

function findDefinition(mod: Record<string, unknown>, name: string): AnyTaskDefinition | undefined {
  for (const value of Object.values(mod)) {
    const candidates = Array.isArray(value) ? value : [value];
    for (const c of candidates) {
      if (c && typeof c === 'object' && (c as AnyTaskDefinition).name === name && typeof (c as AnyTaskDefinition).run === 'function') {
        return c as AnyTaskDefinition;
      }
    }
  }
  return undefined;
}

try {
  const definition = findDefinition(await import(tasksModule), record.name);
  if (!definition) throw new Error(`Task ${record.name} is not exported by ${tasksModule}`);
  const ctx: TaskContext = {
    taskId: record.id,
    name: record.name,
    attempt: record.attempt,
    maxAttempts: record.maxAttempts,
    tenantId: record.tenantId,
    signal: controller.signal,
    async progress(percent, message) {
      send({ type: 'progress', percent, message });
    },
    log(message, data) {
      send({ type: 'log', message, data });
    },
  };
  const result = await definition.run(record.params, ctx);
  send({ type: 'done', ok: true, result });
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  send({ type: 'done', ok: false, error: { name: e.name, message: e.message, stack: e.stack } });
}
