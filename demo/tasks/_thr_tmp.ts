import { runInThread } from '../../src/engines/local/thread.js';
const t0 = Date.now();
const run = runInThread(new URL('file:///work/main/demo/tasks/index.ts').href, { id: 'x', name: 'demo.cpu_burn', params: { ms: 5000 }, attempt: 1, maxAttempts: 1, tenantId: null } as any,
  { progress: async (p: number, m?: string) => console.log('progress', p, m, Date.now() - t0), log: () => {} } as any);
setTimeout(() => { console.log('abort (ignored)'); run.abort(new Error('soft')); }, 1200);
setTimeout(() => { console.log('terminate'); run.terminate(); }, 2300);
run.promise.then((r) => console.log('done', r), (e) => console.log('rejected', e.message)).finally(() => console.log('elapsed', Date.now() - t0));
setTimeout(() => console.log('main still alive', Date.now() - t0), 2600);
