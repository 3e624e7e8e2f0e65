import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { celeryRoutes } from '../src/http/routes/celery.js';
import { companyRoutes } from '../src/http/routes/companies.js';
import type { Taskyard } from '../src/taskyard.js';
import { findCompany } from './companies.js';
import { createReconciliationModule } from './reconciliation/module.js';
import { demoRoutes } from './routes.js';

export interface DemoApp {
  /** The seeds' compatibility routers and the demo's own modules, mounted beside the native API. */
  plugins: Array<(app: FastifyInstance) => Promise<void> | void>;
  /** Closes the demo's own resources; call after the yard has closed. */
  close(): Promise<void>;
}

export function createDemoApp(yard: Taskyard, options: { ledgerFile: string }): DemoApp {
  const reconciliation = createReconciliationModule({
    yard,
    filename: join(dirname(options.ledgerFile), 'reconciliation.db'),
  });
  return {
    plugins: [
      (app) => celeryRoutes(app, yard),
      (app) => companyRoutes(app, yard, { companyName: (id) => findCompany(id)?.name ?? null }),
      (app) => demoRoutes(app, yard),
      (app) => reconciliation.routes(app),
    ],
    close: () => reconciliation.close(),
  };
}
