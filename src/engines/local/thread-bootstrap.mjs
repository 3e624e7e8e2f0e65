// Entry of a task's worker thread. Plain JavaScript, so it loads under any runner: it registers
// tsx only when TypeScript must be loaded (the worker itself when running from source, or a .ts
// tasks module), then runs the worker. Built code with a JavaScript tasks module needs no tsx.
import { workerData } from 'node:worker_threads';

const isTypeScript = (url) => /\.[cm]?tsx?$/.test(new URL(url).pathname);

if (isTypeScript(workerData.entry) || isTypeScript(workerData.tasksModule)) {
  let api;
  try {
    api = await import('tsx/esm/api');
  } catch {
    throw new Error(
      `${workerData.tasksModule} is TypeScript, which needs tsx to load in a worker thread: ` +
        'install it (npm install --save-dev tsx) or point tasksModule at the compiled JavaScript',
    );
  }
  api.register();
}
await import(workerData.entry);
