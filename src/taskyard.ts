import { join } from 'node:path';
import { pino } from 'pino';
import type { AnyTaskDefinition } from './core/definition.js';
import { conflict, taskNotFound, TaskyardError } from './core/errors.js';
import { EventBus, type TaskEvent, type TaskEventListener, type TaskEventType } from './core/events.js';
import { uuidv7 } from './core/ids.js';
import type { TaskRecord } from './core/record.js';
import { TaskRegistry, type CategoryRule } from './core/registry.js';
import { isTerminal } from './core/states.js';
import { revokedChange } from './engines/execution.js';
import { LocalEngine } from './engines/local/engine.js';
import type { Engine, EngineInfo, Logger } from './engines/types.js';
import { Pruner, type PrunerOptions } from './maintenance/pruner.js';
import { SqliteStore } from './store/sqlite.js';
import type { LedgerStats, ListFilter, TaskPage, TaskStore, TenantScope } from './store/types.js';

export interface SubmitOptions {
  /** Run not before this time. */
  eta?: Date | string | number;
  /** Run after this many seconds. */
  countdown?: number;
  priority?: number;
  queue?: string;
  /** A second submit with the same key returns the first run instead of creating another. */
  idempotencyKey?: string;
}

export interface SubmitRequest extends SubmitOptions {
  name: string;
  params?: unknown;
  /** Free-form metadata kept on the run (e.g. why it was launched). */
  meta?: Record<string, unknown>;
}

/** Lifecycle hooks, called after the transition is committed to the ledger. */
export interface Hooks {
  onEnqueued(event: TaskEvent): unknown;
  onStarted(event: TaskEvent): unknown;
  onProgress(event: TaskEvent): unknown;
  onSucceeded(event: TaskEvent): unknown;
  onFailed(event: TaskEvent): unknown;
  onRetry(event: TaskEvent): unknown;
  onRevoked(event: TaskEvent): unknown;
}

const HOOK_OF: Partial<Record<TaskEventType, keyof Hooks>> = {
  enqueued: 'onEnqueued',
  started: 'onStarted',
  progress: 'onProgress',
  succeeded: 'onSucceeded',
  failed: 'onFailed',
  retry: 'onRetry',
  revoked: 'onRevoked',
};

export interface TaskyardOptions {
  tasks: readonly AnyTaskDefinition[];
  categoryRules?: readonly CategoryRule[];
  /** A store, or where the embedded SQLite ledger lives (default `./data/taskyard.db`). */
  store?: TaskStore;
  dataDir?: string;
  /** Default: the embedded local engine. */
  engine?: Engine;
  /** Module exporting the task definitions; needed for `isolation: 'thread'`. */
  tasksModule?: string;
  hooks?: Partial<Hooks>;
  logger?: Logger;
  /** Start executing at once (default true). An API-only process sets false. */
  execute?: boolean;
  /** How long `close()` lets running work finish before requeueing it. */
  shutdownGraceMs?: number;
  /** How long a soft cancel waits for the run to stop before answering. */
  softCancelWaitMs?: number;
  /** Retention of finished runs; `false` keeps everything. */
  pruner?: PrunerOptions | false;
}

export interface CancelOptions {
  hard?: boolean;
  reason?: string | null;
}

export interface Stats extends LedgerStats {
  workers: EngineInfo['workers'];
}

export class Taskyard {
  readonly registry: TaskRegistry;
  readonly store: TaskStore;
  readonly engine: Engine;
  readonly logger: Logger;
  private readonly bus: EventBus;
  private readonly hooks: Array<Partial<Hooks>> = [];
  private readonly options: TaskyardOptions;
  private closed = false;
  private readonly pruner: Pruner | null;

  constructor(options: TaskyardOptions) {
    this.options = options;
    this.logger = options.logger ?? pino({ level: process.env.TASKYARD_LOG_LEVEL ?? 'info' });
    this.registry = new TaskRegistry(options.tasks, options.categoryRules);
    this.bus = new EventBus((error) => this.logger.error({ err: error }, 'event listener failed'));
    this.store =
      options.store ??
      new SqliteStore({ filename: join(options.dataDir ?? process.env.TASKYARD_DATA_DIR ?? 'data', 'taskyard.db') });
    this.engine = options.engine ?? new LocalEngine();
    if (options.hooks) this.hooks.push(options.hooks);
    this.pruner = options.pruner === false ? null : new Pruner(this.store, this.logger, options.pruner);
    this.store.onCommit = (events) => this.dispatch(events);
  }

  /** Opens the ledger (running migrations) and starts the engine. */
  async start(): Promise<this> {
    await this.store.migrate();
    if (this.options.execute !== false) {
      await this.engine.start({
        store: this.store,
        registry: this.registry,
        logger: this.logger,
        tasksModule: this.options.tasksModule,
      });
      this.pruner?.start();
    }
    return this;
  }

  private dispatch(events: TaskEvent[]): void {
    this.engine.onEvents?.(events);
    for (const event of events) {
      this.bus.emit(event);
      const hookName = HOOK_OF[event.type];
      if (!hookName) continue;
      for (const hooks of this.hooks) {
        const hook = hooks[hookName];
        if (!hook) continue;
        try {
          const pending = hook(event);
          if (pending instanceof Promise) pending.catch((error) => this.logger.error({ err: error, hook: hookName }, 'hook failed'));
        } catch (error) {
          this.logger.error({ err: error, hook: hookName }, 'hook failed');
        }
      }
    }
  }

  /** Adds lifecycle hooks; returns a function that removes them. */
  addHooks(hooks: Partial<Hooks>): () => void {
    this.hooks.push(hooks);
    return () => {
      const i = this.hooks.indexOf(hooks);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Listens to committed events: one type, or '*' for all. Returns an unsubscribe function. */
  on(type: TaskEventType | '*', listener: TaskEventListener): () => void {
    return this.bus.subscribe(type === '*' ? listener : (event) => event.type === type && listener(event));
  }

  // ---- launching -----------------------------------------------------------------------

  async submit(name: string, params?: unknown, options: SubmitOptions = {}): Promise<string> {
    const [record] = await this.launch([{ ...options, name, params }]);
    return record!.id;
  }

  async submitMany(requests: SubmitRequest[]): Promise<string[]> {
    return (await this.launch(requests)).map((r) => r.id);
  }

  /**
   * Validates every request first (all or nothing), writes the runs to the ledger in one
   * commit, then hands them to the engine. Returns the records. `scope` limits the tenants
   * the caller may launch for.
   */
  async launch(requests: SubmitRequest[], scope: TenantScope = '*'): Promise<TaskRecord[]> {
    const now = Date.now();
    const records = requests.map((request) => this.buildRecord(request, now, scope));
    const fresh: TaskRecord[] = [];
    const out: TaskRecord[] = [];
    for (const record of records) {
      if (record.idempotencyKey) {
        const existing = await this.store.findByIdempotencyKey(record.idempotencyKey);
        if (existing) {
          out.push(existing);
          continue;
        }
      }
      fresh.push(record);
      out.push(record);
    }
    if (fresh.length > 0) {
      const events = await this.store.insert(fresh);
      const written = new Set(events.map((e) => e.taskId));
      for (let i = 0; i < out.length; i++) {
        const r = out[i]!;
        // Lost an idempotency race (or a repeated key in this batch): answer with the run that won.
        if (r.idempotencyKey && !written.has(r.id) && fresh.includes(r)) {
          out[i] = (await this.store.findByIdempotencyKey(r.idempotencyKey)) ?? r;
        }
      }
      await this.engine.enqueue(fresh.filter((r) => written.has(r.id)));
    }
    return out;
  }

  private buildRecord(request: SubmitRequest, now: number, scope: TenantScope): TaskRecord {
    const definition = this.registry.get(request.name);
    const params = this.registry.parseParams(definition, request.params);
    const tenantId = definition.tenantOf(params);
    if (scope !== '*' && (tenantId === null || !scope.includes(tenantId))) {
      throw new TaskyardError('forbidden', tenantId === null ? 'This key can only launch tasks that belong to one of its tenants' : `This key cannot launch tasks for tenant ${tenantId}`);
    }
    return {
      id: uuidv7(now),
      name: definition.name,
      category: this.registry.categoryOf(definition),
      displayName: definition.displayName,
      state: 'PENDING',
      progress: 0,
      progressMessage: null,
      tenantId,
      params,
      result: null,
      error: null,
      traceback: null,
      meta: request.meta ?? null,
      attempt: 0,
      maxAttempts: definition.retry.attempts,
      priority: request.priority ?? definition.priority,
      queue: request.queue ?? definition.queue,
      route: definition.route,
      engine: this.engine.name,
      worker: null,
      idempotencyKey: request.idempotencyKey ?? null,
      runAt: runAtOf(request, now),
      cancelRequested: null,
      revokeReason: null,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      updatedAt: now,
    };
  }

  // ---- reading -------------------------------------------------------------------------

  /** The run, or a `task_not_found` error (also for runs outside `scope`). */
  async get(id: string, scope: TenantScope = '*'): Promise<TaskRecord> {
    const record = await this.store.get(id, scope);
    if (!record) throw taskNotFound(id);
    return record;
  }

  list(filter: ListFilter, scope: TenantScope = '*'): Promise<TaskPage> {
    return this.store.list(filter, scope);
  }

  async stats(scope: TenantScope = '*'): Promise<Stats> {
    const [ledger, info] = await Promise.all([this.store.stats(scope, Date.now()), this.engine.info()]);
    return { ...ledger, workers: info.workers };
  }

  /** Resolves with the run once it is terminal. */
  waitFor(id: string, timeoutMs = 30_000): Promise<TaskRecord> {
    return new Promise<TaskRecord>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`Task ${id} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (record: TaskRecord) => {
        clearTimeout(timer);
        off();
        resolve(record);
      };
      const off = this.bus.subscribe((event) => {
        if (event.taskId === id && isTerminal(event.state)) void this.get(id).then(done, reject);
      });
      this.get(id).then((record) => isTerminal(record.state) && done(record), (error) => {
        clearTimeout(timer);
        off();
        reject(error);
      });
    });
  }

  // ---- control -------------------------------------------------------------------------

  /**
   * Cancels a run. Waiting runs are revoked durably at once. A running run is told through its
   * signal (soft), or killed/abandoned (hard); see LocalEngine for which applies.
   */
  async cancel(id: string, options: CancelOptions = {}, scope: TenantScope = '*'): Promise<TaskRecord> {
    const hard = options.hard ?? false;
    const reason = options.reason ?? null;
    let record = await this.get(id, scope);
    if (isTerminal(record.state)) throw conflict(`Task ${id} already finished (${record.state}); it cannot be cancelled`);
    if (record.state === 'PENDING' || record.state === 'RETRY') {
      const [event] = await this.store.apply([{ ...revokedChange(record, reason, hard), from: ['PENDING', 'RETRY'] }]);
      if (event) {
        await this.engine.forget(record);
        return this.get(id);
      }
      record = await this.get(id); // it started meanwhile
      if (isTerminal(record.state)) throw conflict(`Task ${id} already finished (${record.state}); it cannot be cancelled`);
    }
    const revoked = hard ? null : this.waitForState(id, this.options.softCancelWaitMs ?? 2000);
    const held = await this.engine.cancelRunning(record, { hard, reason });
    if (!held) {
      // No live run holds it (its process is gone): the ledger decides, and any late outcome is refused.
      await this.store.apply([{ ...revokedChange(record, reason, hard), from: ['STARTED'] }]);
    } else if (revoked) {
      await revoked;
    }
    return this.get(id);
  }

  private waitForState(id: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      const off = this.bus.subscribe((event) => event.taskId === id && isTerminal(event.state) && finish());
      function finish() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }

  /** Puts a FAILURE or REVOKED run back in the queue, with its attempts reset. */
  async retry(id: string, scope: TenantScope = '*'): Promise<TaskRecord> {
    const record = await this.get(id, scope);
    if (record.state !== 'FAILURE' && record.state !== 'REVOKED') {
      throw conflict(`Task ${id} is ${record.state}; only FAILURE or REVOKED runs can be retried`);
    }
    const now = Date.now();
    const [event] = await this.store.apply([
      {
        id,
        to: 'PENDING',
        from: ['FAILURE', 'REVOKED'],
        patch: {
          attempt: 0,
          error: null,
          traceback: null,
          result: null,
          progress: 0,
          progressMessage: null,
          startedAt: null,
          finishedAt: null,
          runAt: now,
          worker: null,
          revokeReason: null,
          cancelRequested: null,
        },
        event: 'enqueued',
        data: { retry: true },
      },
    ]);
    if (!event) throw conflict(`Task ${id} changed state; try again`);
    const fresh = await this.get(id);
    await this.engine.enqueue([fresh]);
    return fresh;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pruner?.stop();
    if (this.options.execute !== false) await this.engine.stop(this.options.shutdownGraceMs ?? 10_000);
    await this.store.close();
  }
}

/** Latest a run may be scheduled: far enough for any real delay, near enough to be a valid date. */
const MAX_DELAY_MS = 10 * 365 * 86_400_000;

function runAtOf(request: SubmitOptions, now: number): number {
  let t = now;
  let field = 'countdown';
  if (request.countdown !== undefined) t = now + Math.max(0, request.countdown) * 1000;
  else if (request.eta !== undefined) {
    field = 'eta';
    t = request.eta instanceof Date ? request.eta.getTime() : typeof request.eta === 'number' ? request.eta : Date.parse(request.eta);
  }
  if (!Number.isFinite(t) || t - now > MAX_DELAY_MS) {
    throw new TaskyardError('invalid_params', `Invalid ${field}: must be a time within 10 years`, [
      { field, message: 'must be an ISO date (or epoch milliseconds) within 10 years' },
    ]);
  }
  return Math.max(now, t);
}

/** Creates and starts a Taskyard: SQLite ledger and local engine unless told otherwise. */
export async function createTaskyard(options: TaskyardOptions): Promise<Taskyard> {
  return new Taskyard(options).start();
}
