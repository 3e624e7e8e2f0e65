import type { FastifyInstance } from 'fastify';
import type { Taskyard } from '../src/taskyard.js';

/** The seeds' compatibility routers and the demo's own modules, mounted beside the native API. */
export function demoPlugins(_yard: Taskyard): Array<(app: FastifyInstance) => Promise<void> | void> {
  return [];
}
