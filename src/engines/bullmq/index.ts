export { BullMQEngine, type BullMQEngineOptions } from './engine.js';
export { createWorker, type WorkerOptions } from './worker.js';
export { jobIdOf } from './jobs.js';
