import { Worker } from 'node:worker_threads';
import type { TaskRecord } from '../../core/record.js';
import { tasksModuleUrl } from '../../tasks-module.js';
import type { ContextSink } from '../execution.js';

/** Messages from a run's worker thread. */
export type ThreadMessage =
  | { type: 'progress'; percent: number; message?: string }
  | { type: 'log'; message: string; data?: Record<string, unknown> }
  | { type: 'done'; ok: true; result: unknown }
  | { type: 'done'; ok: false; error: { name: string; message: string; stack?: string } };

export interface ThreadRun {
  promise: Promise<unknown>;
  abort(reason: unknown): void;
  /** Kills the thread at once: the only way to stop code that ignores its signal. */
  terminate(): void;
}

// The bootstrap is plain JS so it loads under any runner; it registers the TypeScript loader only
// when the worker or the tasks module is a .ts file (tsx's --import does not reach worker threads
// on Node 20). Built code running a JavaScript tasks module never loads tsx.
const bootstrapUrl = new URL('./thread-bootstrap.mjs', import.meta.url);
const workerEntry = new URL(`./thread-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href;

/**
 * Runs one task in its own worker thread, so a hard cancel or hard timeout can kill it.
 * `tasksModule` is a file URL or a path (relative to the working directory).
 */
export function runInThread(tasksModule: string, record: TaskRecord, sink: ContextSink): ThreadRun {
  const worker = new Worker(bootstrapUrl, {
    workerData: {
      entry: workerEntry,
      tasksModule: tasksModuleUrl(tasksModule),
      record: { id: record.id, name: record.name, params: record.params, attempt: record.attempt, maxAttempts: record.maxAttempts, tenantId: record.tenantId },
    },
  });
  let settled = false;
  const promise = new Promise<unknown>((resolve, reject) => {
    worker.on('message', (msg: ThreadMessage) => {
      if (msg.type === 'progress') void sink.progress(msg.percent, msg.message).catch(() => {});
      else if (msg.type === 'log') sink.log(msg.message, msg.data);
      else {
        settled = true;
        if (msg.ok) resolve(msg.result);
        else reject(Object.assign(new Error(msg.error.message), { name: msg.error.name, stack: msg.error.stack }));
        void worker.terminate();
      }
    });
    worker.on('error', (error) => {
      settled = true;
      reject(error);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`Worker thread exited with code ${code}`));
    });
  });
  return {
    promise,
    abort(reason) {
      const name = reason instanceof Error ? reason.name : 'AbortError';
      const message = reason instanceof Error ? reason.message : String(reason);
      worker.postMessage({ type: 'abort', name, message });
    },
    terminate() {
      settled = true;
      void worker.terminate();
    },
  };
}
