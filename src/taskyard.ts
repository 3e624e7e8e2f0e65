import { join } from 'node:path';
import { pino } from 'pino';
import type { AnyTaskDefinition } from './core/definition.js';
import { conflict, notFound, taskNotFound, TaskyardError } from './core/errors.js';
import { EventBus, type TaskEvent, type TaskEventListener, type TaskEventType } from './core/events.js';
import { uuidv7 } from './core/ids.js';
import type { TaskRecord } from './core/record.js';
import { TaskRegistry, type CategoryRule } from './core/registry.js';
import { isTerminal, LIVE_STATES, type TaskState } from './core/states.js';
import { cancelRequestChange, DEFAULT_LIMITS, jsonBytes, revokedChange, type RecordLimits } from './engines/execution.js';
import { attemptsOf, type Attempt } from './core/attempts.js';
import { cacheKeyOf, canonicalJson, uniqueKeyOf } from './core/launch-keys.js';
import { LocalEngine } from './engines/local/engine.js';
import type { Engine, EngineInfo, Logger, WorkerInfo } from './engines/types.js';
import { DurableConsumer, type ConsumerHandler, type ConsumerOptions } from './maintenance/consumers.js';
import { Heartbeat } from './maintenance/heartbeat.js';
import { Leadership } from './maintenance/leadership.js';
import { isDead, processIdentity, type ProcessIdentity } from './maintenance/peers.js';
import { maintenanceDuties, type MaintenanceOptions } from './maintenance/duties.js';
import type { PrunerOptions } from './maintenance/pruner.js';
import { Rescuer } from './maintenance/rescuer.js';
import { maintenanceDefinition, RoundRecorder } from './maintenance/rounds.js';
import { Scheduler, type SchedulerOptions } from './maintenance/scheduler.js';
import { MaintenanceRunner } from './maintenance/runner.js';
import { EventFeed } from './notifier/feed.js';
import type { ScheduleDefinition } from './schedules/definition.js';
import { Schedules } from './schedules/schedules.js';
import { SqliteStore } from './store/sqlite.js';
import type { LedgerStats, ListFilter, Pause, PauseKind, TaskPage, TaskStore, TenantScope } from './store/types.js';

export interface SubmitOptions {
  /** Run not before this time. */
  eta?: Date | string | number;
  /** Run after this many seconds. */
  countdown?: number;
  priority?: number;
  queue?: string;
  /**
   * A second launch with the same key (for the same tenant) returns the first run instead of
   * creating another; the same key with another task or other params is a conflict.
   */
  idempotencyKey?: string;
}

/** How a launch was answered: a new run, or an earlier one (see `Taskyard.launchEach`). */
export type LaunchOutcome = 'created' | 'idempotent' | 'deduplicated' | 'cached';

export interface Launched {
  record: TaskRecord;
  outcome: LaunchOutcome;
}

export interface LaunchOptions {
  /** Allow Taskyard's internal definitions (the library's own submits do; API callers never). */
  internal?: boolean;
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

/** The server log's line for each lifecycle event; progress stays in the timeline. */
const LIFECYCLE_LINES: Partial<Record<TaskEventType, string>> = {
  enqueued: 'task launched',
  started: 'task started',
  succeeded: 'task succeeded',
  failed: 'task failed',
  retry: 'task will retry',
  cancel_requested: 'task cancel requested',
  revoked: 'task revoked',
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
  /** The leader's housekeeping: pruner (retention), status sync, orphan cleaner; see MaintenanceOptions. */
  maintenance?: MaintenanceOptions;
  /** The same as `maintenance.pruner` (which wins when both are given). */
  pruner?: PrunerOptions | false;
  /** Size limits on params, results and messages (see DEFAULT_LIMITS). */
  limits?: Partial<RecordLimits>;
  /** How processes sharing one ledger watch each other (see DEFAULT_PEERS). */
  peers?: Partial<PeerOptions>;
  /** Schedules defined in code, stored at start (see README, "Schedules"). */
  schedules?: readonly ScheduleDefinition[];
  /** The leader's scheduler; `false` fires no schedule from this process. */
  scheduler?: SchedulerOptions | false;
}

export interface PeerOptions {
  /** A process's runs are rescued this long after its last heartbeat. */
  leaseMs: number;
  /** How often each process renews its lease (and the leader its leadership). */
  heartbeatMs: number;
  /** How often the leader looks for runs of lost processes. */
  rescueIntervalMs: number;
  /** How often each process reads events other processes committed. */
  feedPollMs: number;
}

export const DEFAULT_PEERS: PeerOptions = { leaseMs: 15_000, heartbeatMs: 5_000, rescueIntervalMs: 5_000, feedPollMs: 50 };

export interface TimelinePage {
  events: TaskEvent[];
  /** Pass as `after` for the next page; null when this page reached the end. */
  nextAfter: number | null;
}

export interface CancelOptions {
  hard?: boolean;
  reason?: string | null;
  /** How long a soft cancel of a running run waits for it to stop before answering (default: softCancelWaitMs). */
  waitMs?: number;
}

/** Which runs a bulk action touches: the list filter's fields, without paging or free text. */
export type BulkFilter = Omit<ListFilter, 'limit' | 'cursor' | 'search'>;

export interface BulkOptions {
  /** Count (and sample) the matching runs without acting on them. */
  dryRun?: boolean;
  /** How many matching ids to report (default 20). */
  sampleSize?: number;
}

export interface BulkReport {
  matched: number;
  /** Runs cancelled, retried or revoked. */
  acted: number;
  /** Matching runs the action did not apply to (finished meanwhile, refused, ...). */
  skipped: number;
  sample: string[];
  dryRun: boolean;
}

export interface QueueInfo {
  name: string;
  paused: boolean;
  /** Waiting runs (PENDING and RETRY, delayed or due) within the caller's tenants. */
  waiting: number;
  /** Definitions that run in this queue by default. */
  taskTypes: string[];
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
  private draining: Promise<void> | null = null;
  readonly limits: RecordLimits;
  readonly peers: PeerOptions;
  /** This process among the peers sharing the ledger; its id is the owner of the runs it claims. */
  readonly identity: ProcessIdentity;
  private readonly feed: EventFeed;
  private readonly heartbeat: Heartbeat;
  private readonly leadership: Leadership;
  private readonly maintenance: MaintenanceRunner;
  private readonly consumers = new Map<DurableConsumer, Leadership>();
  private consumersWoken = false;
  /** Schedules in the ledger: list, create, change, remove (fired by the leader's scheduler). */
  readonly schedules: Schedules;

  constructor(options: TaskyardOptions) {
    this.options = options;
    this.logger = options.logger ?? pino({ level: process.env.TASKYARD_LOG_LEVEL ?? 'info' });
    this.registry = new TaskRegistry(options.tasks, options.categoryRules);
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.bus = new EventBus((error) => this.logger.error({ err: error }, 'event listener failed'));
    this.store =
      options.store ??
      new SqliteStore({ filename: join(options.dataDir ?? process.env.TASKYARD_DATA_DIR ?? 'data', 'taskyard.db') });
    this.engine = options.engine ?? new LocalEngine();
    if (options.hooks) this.hooks.push(options.hooks);
    const heartbeatMs = options.peers?.heartbeatMs ?? DEFAULT_PEERS.heartbeatMs;
    this.peers = { ...DEFAULT_PEERS, rescueIntervalMs: heartbeatMs, ...options.peers };
    this.identity = processIdentity(this.engine.name);
    this.leadership = new Leadership(this.store, this.identity, this.peers.leaseMs);
    const executes = options.execute !== false;
    this.heartbeat = new Heartbeat(this.store, this.identity, this.leadership, {
      engine: executes ? this.engine.name : 'api',
      concurrency: executes ? (this.engine.concurrency ?? 0) : 0,
      leaseMs: this.peers.leaseMs,
      intervalMs: this.peers.heartbeatMs,
    });
    const rescuer = new Rescuer(this.store, this.registry, this.logger, this.identity.host, this.peers.rescueIntervalMs);
    // ---- maintenance duties (pruner, status sync, orphan cleaner), their rounds recorded as runs
    const duties = maintenanceDuties(
      { store: this.store, logger: this.logger, rescuer, broker: this.engine.broker?.() },
      { ...options.maintenance, pruner: options.maintenance?.pruner ?? options.pruner },
    );
    const recorder = options.maintenance?.recordRounds === false ? undefined : new RoundRecorder(this.store, this.registry, this.identity.id);
    if (recorder) for (const duty of duties.filter((d) => d.recorded)) this.registry.register(maintenanceDefinition(duty));
    // ----
    this.maintenance = new MaintenanceRunner(
      [
        this.heartbeat,
        rescuer,
        ...duties,
        ...(options.scheduler === false ? [] : [new Scheduler(this.store, (r) => this.launchScheduled(r), this.logger, options.scheduler)]),
        ...(this.engine.services?.({ store: this.store, logger: this.logger }) ?? []),
      ],
      this.leadership,
      this.logger,
      recorder,
    );
    this.schedules = new Schedules(this.store, this.registry);
    this.feed = new EventFeed(this.store, (events) => this.deliver(events), this.logger, {
      pollMs: this.peers.feedPollMs,
      // Listeners (SSE, metrics, waits) and durable consumers take every event; with none, only
      // what the engine acts on is read (a BullMQ worker: cancel requests).
      types: () => (this.bus.size > 0 || this.consumers.size > 0 ? null : (this.engine.eventTypes ?? null)),
    });
    this.store.onCommit = (events) => this.committed(events);
  }

  /** Opens the ledger (running migrations) and starts the engine. */
  async start(): Promise<this> {
    await this.store.migrate();
    if (this.options.schedules) await this.schedules.syncCode(this.options.schedules);
    await this.feed.start();
    // The first heartbeat (and leadership claim) before anything runs: the rescuer then knows at
    // once which runs are ours and which belong to a process that is gone.
    await this.heartbeat.runOnce(Date.now());
    if (this.options.execute !== false) {
      await this.engine.start({
        store: this.store,
        registry: this.registry,
        logger: this.logger,
        tasksModule: this.options.tasksModule,
        limits: this.limits,
        workerId: this.identity.id,
      });
    }
    this.maintenance.start();
    return this;
  }

  /**
   * Runs a maintenance duty now, in this process, leader or not (an operator's "run now", and
   * tests): e.g. `pruner`, `status_sync`, `orphan_cleaner`, `rescuer`. Recorded like any round.
   */
  runMaintenance(name: string): Promise<unknown> {
    return this.maintenance.runNow(name);
  }

  /** Whether this process leads the maintenance duties right now. */
  get isLeader(): boolean {
    return this.leadership.isLeader;
  }

  /**
   * Adds a durable consumer of the event log: run by one process at a time, from a cursor kept in the
   * ledger, so a crash loses nothing (see DurableConsumer). Returns it, e.g. to drain it now.
   */
  consume(name: string, handler: ConsumerHandler, options?: ConsumerOptions): DurableConsumer {
    // Its own leader role, held only by processes that host it: a process that does not (a worker
    // without webhooks configured, say) can lead maintenance without stalling this consumer.
    const role = new Leadership(this.store, this.identity, this.peers.leaseMs, `consumer:${name}`);
    // A consumer new to this ledger starts with what is committed from now on.
    const consumer = new DurableConsumer(name, this.store, handler, this.logger, {
      startAfter: this.feed.position,
      leading: () => role.isLeader,
      ...options,
    });
    this.consumers.set(consumer, role);
    this.heartbeat.addRole(role);
    this.maintenance.add(consumer);
    void role.claim().catch((error) => this.logger.warn({ err: error, consumer: name }, 'could not claim the consumer role'));
    return consumer;
  }

  /** Stops a durable consumer in this process (its cursor stays in the ledger). */
  stopConsuming(consumer: DurableConsumer): void {
    const role = this.consumers.get(consumer);
    this.consumers.delete(consumer);
    this.maintenance.remove(consumer);
    if (role) {
      this.heartbeat.removeRole(role);
      void role.resign().catch(() => {});
    }
  }

  /**
   * Events this process committed: logged and given to hooks here, once (hooks are best-effort
   * and in-process; durable reactions use `consume`). Then into the ordered feed.
   */
  private committed(events: TaskEvent[]): void {
    this.feed.own(events);
    const logging = this.lifecycleLogging();
    for (const event of events) {
      if (logging) this.logLifecycle(event);
      const hookName = HOOK_OF[event.type];
      if (!hookName) continue;
      for (const hooks of this.hooks) {
        const hook = hooks[hookName];
        if (!hook) continue;
        try {
          const pending = hook(event);
          if (pending instanceof Promise) pending.catch((error) => this.hookFailed(error, hookName, event));
        } catch (error) {
          this.hookFailed(error, hookName, event);
        }
      }
    }
  }

  private hookFailed(error: unknown, hook: keyof Hooks, event: TaskEvent): void {
    this.logger.error({ err: error, hook, task_id: event.taskId, name: event.name }, 'hook failed');
  }

  /** Every committed event of the ledger, from any process, once and in order. */
  private deliver(events: TaskEvent[]): void {
    this.engine.onEvents?.(events);
    for (const event of events) this.bus.emit(event);
    // Durable consumers hosted here catch up at once rather than on their next interval (each
    // returns at once unless this process holds its role).
    if (this.consumers.size > 0 && !this.consumersWoken) {
      this.consumersWoken = true;
      setImmediate(() => {
        this.consumersWoken = false;
        for (const consumer of this.consumers.keys()) void consumer.runOnce().catch((error) => this.logger.error({ err: error, consumer: consumer.name }, 'consumer failed'));
      });
    }
  }

  /** Whether lifecycle lines would be written at all: at full speed, building them costs time. */
  private lifecycleLogging(): boolean {
    const logger = this.logger as Logger & { isLevelEnabled?: (level: string) => boolean };
    return logger.isLevelEnabled ? logger.isLevelEnabled('info') : true;
  }

  /**
   * One structured line per launch, start, outcome, retry and cancel (seed 004 logs these), and
   * one per `ctx.log` line, each with the run's `task_id`.
   */
  private logLifecycle(event: TaskEvent): void {
    const data = event.data ?? {};
    const task = { task_id: event.taskId, name: event.name, tenant: event.tenantId };
    if (event.type === 'log') {
      const { message, ...rest } = data;
      this.logger.info(Object.keys(rest).length > 0 ? { ...task, data: rest } : task, String(message));
      return;
    }
    const line = LIFECYCLE_LINES[event.type];
    if (!line) return;
    const fields: Record<string, unknown> = { ...task, state: event.state };
    if (data.attempt !== undefined) fields.attempt = data.attempt;
    if (data.duration_ms !== undefined && data.duration_ms !== null) fields.duration_ms = data.duration_ms;
    if (data.error !== undefined) fields.error = data.error;
    if (data.reason !== undefined) fields.reason = data.reason;
    if (data.hard !== undefined) fields.hard = data.hard;
    if (data.delay_ms !== undefined) fields.retry_in_ms = data.delay_ms;
    const level = event.type === 'failed' ? 'error' : event.type === 'retry' ? 'warn' : 'info';
    this.logger[level](fields, line);
  }

  /** Adds lifecycle hooks; returns a function that removes them. */
  addHooks(hooks: Partial<Hooks>): () => void {
    this.hooks.push(hooks);
    return () => {
      const i = this.hooks.indexOf(hooks);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Every committed event from now on, to `listener`; the feed reads all of them while it listens. */
  private listen(listener: TaskEventListener): () => void {
    const off = this.bus.subscribe(listener);
    this.feed.widen();
    return off;
  }

  /** Listens to committed events: one type, or '*' for all. Returns an unsubscribe function. */
  on(type: TaskEventType | '*', listener: TaskEventListener): () => void {
    return this.listen(type === '*' ? listener : (event) => event.type === type && listener(event));
  }

  // ---- launching -----------------------------------------------------------------------

  async submit(name: string, params?: unknown, options: SubmitOptions = {}): Promise<string> {
    const [record] = await this.launch([{ ...options, name, params }], '*', { internal: true });
    return record!.id;
  }

  /** A schedule's tick: one run, made once per idempotency key. */
  private async launchScheduled(request: SubmitRequest & { idempotencyKey: string }): Promise<TaskRecord> {
    const [record] = await this.launch([request], '*', { internal: true });
    return record!;
  }

  async submitMany(requests: SubmitRequest[]): Promise<string[]> {
    return (await this.launch(requests, '*', { internal: true })).map((r) => r.id);
  }

  /**
   * Validates every request first (all or nothing), writes the runs to the ledger in one
   * commit, then hands them to the engine. Returns the records. `scope` limits the tenants
   * the caller may launch for. The API launches through here for its callers, so internal
   * definitions are unknown task types unless `options.internal` is set.
   *
   * An idempotency key belongs to the run's tenant: repeating it with the same task and params
   * answers with the first run, and with anything else is a conflict (see `repeatedLaunch`).
   */
  async launch(requests: SubmitRequest[], scope: TenantScope = '*', options: LaunchOptions = {}): Promise<TaskRecord[]> {
    return (await this.launchEach(requests, scope, options)).map((launched) => launched.record);
  }

  /**
   * `launch`, saying for each request whether it made a new run (`created`) or was answered with
   * an earlier one: the run of its idempotency key (`idempotent`), the live run of a `unique`
   * definition (`deduplicated`), or a recent SUCCESS run of a `cache` definition (`cached`).
   * The ledger's unique indexes settle races between processes: a launch that loses one is
   * answered with the winner.
   */
  async launchEach(requests: SubmitRequest[], scope: TenantScope = '*', options: LaunchOptions = {}): Promise<Launched[]> {
    const now = Date.now();
    const records = requests.map((request) => this.buildRecord(request, now, scope, options.internal ?? false));
    const fresh: TaskRecord[] = [];
    const out: Launched[] = [];
    const firstOfKey = new Map<string, TaskRecord>(); // this batch's run for each (tenant, key)
    for (const record of records) {
      const key = record.idempotencyKey;
      const slot = key === null ? null : JSON.stringify([record.tenantId, key]);
      const earlier = slot === null ? null : (firstOfKey.get(slot) ?? (await this.runOfKey(record, now)));
      const launched: Launched = earlier
        ? { record: repeatedLaunch(earlier, record, scope), outcome: 'idempotent' }
        : ((record.cacheKey || record.uniqueKey ? await this.reusableRun(record, now, scope) : null) ?? { record, outcome: 'created' });
      if (slot !== null && !earlier) firstOfKey.set(slot, launched.record);
      if (launched.outcome === 'created') fresh.push(record);
      out.push(launched);
    }
    if (fresh.length > 0) {
      const events = await this.store.insert(fresh);
      const written = new Set(events.map((e) => e.taskId));
      const lost = fresh.filter((r) => !written.has(r.id));
      await this.engine.enqueue(lost.length === 0 ? fresh : fresh.filter((r) => written.has(r.id)));
      // A run not written lost a race to a concurrent launch: answer with the winner. (Only a race
      // can make that a conflict after the rest of a batch was written.)
      for (let i = 0; lost.length > 0 && i < out.length; i++) {
        if (lost.includes(out[i]!.record)) out[i] = await this.winnerOver(out[i]!.record, scope);
      }
    }
    return out;
  }

  /**
   * The run holding `record`'s idempotency key, if the key is still bound to it. Past its
   * definition's window the key is released, so this launch may take it.
   */
  private async runOfKey(record: TaskRecord, now: number): Promise<TaskRecord | null> {
    const earlier = await this.store.findByIdempotencyKey(record.tenantId, record.idempotencyKey!);
    if (!earlier) return null;
    const windowMs = (this.registry.has(earlier.name) ? this.registry.get(earlier.name) : this.registry.get(record.name)).idempotencyWindowMs;
    if (windowMs === null || earlier.createdAt >= now - windowMs) return earlier;
    await this.store.releaseIdempotencyKey(record.tenantId, record.idempotencyKey!, now - windowMs);
    // Another launch may have released it and taken it meanwhile: then that run answers.
    return this.store.findByIdempotencyKey(record.tenantId, record.idempotencyKey!);
  }

  /** A recent SUCCESS run of a `cache` definition, or the live run of a `unique` one, that answers this launch. */
  private async reusableRun(record: TaskRecord, now: number, scope: TenantScope): Promise<Launched | null> {
    const definition = this.registry.get(record.name);
    if (record.cacheKey && definition.cache) {
      const hit = await this.store.findCached(record.cacheKey, now - definition.cache.ttlMs);
      if (hit && inScope(hit.tenantId, scope)) return { record: hit, outcome: 'cached' };
    }
    if (record.uniqueKey) {
      const live = await this.store.findLive(record.uniqueKey);
      if (live && inScope(live.tenantId, scope)) return { record: live, outcome: 'deduplicated' };
    }
    return null;
  }

  /** The run that took a key `record` lost at insert: its idempotency key's, else its unique key's. */
  private async winnerOver(record: TaskRecord, scope: TenantScope): Promise<Launched> {
    const byKey = record.idempotencyKey === null ? null : await this.store.findByIdempotencyKey(record.tenantId, record.idempotencyKey);
    if (byKey) return { record: repeatedLaunch(byKey, record, scope), outcome: 'idempotent' };
    const live = record.uniqueKey ? await this.store.findLive(record.uniqueKey) : null;
    if (live && inScope(live.tenantId, scope)) return { record: live, outcome: 'deduplicated' };
    // The run that won has already finished: rare, and the caller may simply launch again.
    throw conflict(`A concurrent launch of ${record.name} took this launch's key and has already finished; launch again`);
  }

  private buildRecord(request: SubmitRequest, now: number, scope: TenantScope, internal: boolean): TaskRecord {
    const definition = internal ? this.registry.get(request.name) : this.registry.getPublic(request.name);
    const params = this.registry.parseParams(definition, request.params);
    const paramsBytes = jsonBytes(params);
    if (paramsBytes > this.limits.maxParamsBytes) {
      throw new TaskyardError('payload_too_large', `params are ${paramsBytes} bytes, over the ${this.limits.maxParamsBytes}-byte limit; pass a reference to large data instead`);
    }
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
      engine: this.engine.engineFor?.(definition) ?? this.engine.name,
      worker: null,
      idempotencyKey: request.idempotencyKey ?? null,
      uniqueKey: uniqueKeyOf(definition, tenantId, params),
      cacheKey: cacheKeyOf(definition, tenantId, params),
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

  /** A run's events (transitions, progress, log lines, cancel requests), oldest first, paged. */
  async timeline(id: string, page: { after?: number; limit?: number } = {}, scope: TenantScope = '*'): Promise<TimelinePage> {
    await this.get(id, scope); // 404 outside the scope
    const limit = Math.max(1, Math.min(page.limit ?? 100, 1000));
    const events = await this.store.events({ afterSeq: page.after ?? 0, limit: limit + 1, taskId: id }, scope);
    const more = events.length > limit;
    const shown = more ? events.slice(0, limit) : events;
    return { events: shown, nextAfter: more ? shown[shown.length - 1]!.seq : null };
  }

  /** Every attempt of a run (by id, or a record already read): when and where it ran, how it ended, its error and traceback. */
  async attempts(id: string | TaskRecord, scope: TenantScope = '*'): Promise<Attempt[]> {
    const record = typeof id === 'string' ? await this.get(id, scope) : id;
    if (record.attempt === 0) return []; // never started: nothing to read
    // One attempt that has ended or is running: the record itself says all of it, so the status
    // read costs no timeline query. (A run put back by a graceful shutdown and started again is
    // one attempt too: the shutdown requeue is in its timeline.)
    const single = record.attempt === 1 ? singleAttempt(record) : null;
    if (single) return [single];
    const events: TaskEvent[] = [];
    for (let after = 0; ; ) {
      const page = await this.store.events({ afterSeq: after, limit: 1000, taskId: record.id }, scope);
      events.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.seq;
    }
    return attemptsOf(events);
  }

  async stats(scope: TenantScope = '*'): Promise<Stats> {
    const now = Date.now();
    const [ledger, info, peers] = await Promise.all([this.store.stats(scope, now), this.engine.info(), this.otherWorkers(now)]);
    return { ...ledger, workers: [...info.workers, ...peers].map((worker) => workerInScope(worker, scope)) };
  }

  /**
   * Live workers of other processes sharing the ledger, from their heartbeat rows, with the runs
   * the ledger says they hold. Their finished totals are known only to themselves.
   */
  private async otherWorkers(now: number): Promise<WorkerInfo[]> {
    const rows = (await this.store.workers()).filter((w) => w.id !== this.identity.id && w.concurrency > 0 && !isDead(w, now, this.identity.host));
    if (rows.length === 0) return [];
    const started = await this.store.findStarted();
    return rows.map((w) => ({
      name: w.id,
      engine: w.engine,
      host: w.host,
      pid: w.pid,
      concurrency: w.concurrency,
      active: started
        .filter((r) => r.worker === w.id)
        .map((r) => ({ id: r.id, name: r.name, tenantId: r.tenantId, params: r.params, startedAt: r.startedAt ?? now })),
      processed: 0,
      processedByTenant: {},
      startedAt: w.startedAt,
    }));
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
      const off = this.listen((event) => {
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
   * Cancels a run. Waiting runs are revoked durably at once. For a running run the request is
   * written to the ledger first (so it survives any crash, and no retry can follow it), then the
   * run is told: through its signal (soft), or killed/abandoned (hard); see LocalEngine for which
   * applies. A soft cancel waits briefly for the run to stop; the record then says REVOKED, or
   * STARTED with `cancelRequested` while the task finishes up.
   */
  async cancel(id: string, options: CancelOptions = {}, scope: TenantScope = '*'): Promise<TaskRecord> {
    const hard = options.hard ?? false;
    const reason = options.reason ?? null;
    let record = await this.get(id, scope);
    const finished = (r: TaskRecord) => conflict(`Task ${id} already finished (${r.state}); it cannot be cancelled`);
    if (isTerminal(record.state)) throw finished(record);
    if (record.state === 'PENDING' || record.state === 'RETRY') {
      const [event] = await this.store.apply([{ ...revokedChange(record, reason, hard), from: ['PENDING', 'RETRY'] }]);
      if (event) {
        await this.engine.forget(record);
        return this.get(id);
      }
      record = await this.get(id); // it started meanwhile
      if (isTerminal(record.state)) throw finished(record);
    }
    // A second, harder request may follow a soft one; a repeated soft one changes nothing.
    if (record.cancelRequested !== 'hard' && (hard || record.cancelRequested === null)) {
      const [requested] = await this.store.apply([cancelRequestChange(record, reason, hard)]);
      record = await this.get(id);
      if (!requested && isTerminal(record.state)) throw finished(record);
    }
    const waitMs = options.waitMs ?? this.options.softCancelWaitMs ?? 2000;
    const stopped = hard ? null : this.waitForState(id, waitMs);
    const held = await this.engine.cancelRunning(record, { hard, reason });
    if (held) {
      await stopped;
    } else if (await this.ownerAlive(record)) {
      // Another live process runs it: the request reaches it through the ledger's event feed,
      // and the owner records REVOKED. Wait a little for that, then answer with what is known.
      await (stopped ?? this.waitForState(id, waitMs));
    } else {
      stopped?.cancel();
      // No live process holds it: the ledger decides, and any late outcome is refused.
      await this.store.apply([{ ...revokedChange(record, reason, hard), from: ['STARTED'] }]);
    }
    return this.get(id);
  }

  /** Resolves once the run is terminal, or after `timeoutMs`; `cancel()` stops waiting. */
  private waitForState(id: string, timeoutMs: number): Promise<void> & { cancel(): void } {
    let finish!: () => void;
    const promise = new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), timeoutMs);
      const off = this.listen((event) => event.taskId === id && isTerminal(event.state) && finish());
      finish = () => {
        clearTimeout(timer);
        off();
        resolve();
      };
    });
    return Object.assign(promise, { cancel: () => finish() });
  }

  /** Whether the process that owns a STARTED run is still alive (its heartbeat row is valid). */
  private async ownerAlive(record: TaskRecord): Promise<boolean> {
    if (record.worker === null || record.worker === this.identity.id) return false;
    const owner = (await this.store.workers()).find((w) => w.id === record.worker);
    return owner !== undefined && !isDead(owner, Date.now(), this.identity.host);
  }

  /**
   * Puts a FAILURE or REVOKED run back in the queue under the same id. The attempt count goes on
   * (with a fresh retry budget), and every earlier attempt stays readable in `attempts()`.
   */
  async retry(id: string, scope: TenantScope = '*', options: LaunchOptions = {}): Promise<TaskRecord> {
    const record = await this.get(id, scope);
    // A webhook delivery run again would send another validly signed request: only on purpose.
    if (!options.internal && this.registry.has(record.name) && this.registry.get(record.name).internal) {
      throw conflict(`Task ${id} is an internal ${record.name} run; it cannot be retried through the API`);
    }
    if (record.state !== 'FAILURE' && record.state !== 'REVOKED') {
      throw conflict(`Task ${id} is ${record.state}; only FAILURE or REVOKED runs can be retried`);
    }
    const budget = this.registry.has(record.name) ? this.registry.get(record.name).retry.attempts : record.maxAttempts;
    const now = Date.now();
    const live = record.uniqueKey ? await this.store.findLive(record.uniqueKey) : null;
    if (live) throw conflict(`Task ${id} is unique and run ${live.id} with the same key is ${live.state}; it cannot be retried until that run ends`);
    const patch = {
      maxAttempts: record.attempt + budget,
      result: null,
      progress: 0,
      progressMessage: null,
      startedAt: null,
      finishedAt: null,
      runAt: now,
      worker: null,
      revokeReason: null,
      cancelRequested: null,
    };
    const [event] = await this.store.apply([
      {
        id,
        to: 'PENDING',
        from: ['FAILURE', 'REVOKED'],
        patch,
        event: 'enqueued',
        data: { retry: true, previous_state: record.state, attempt: record.attempt },
      },
    ]).catch((error: unknown) => {
      // A unique run launched between the check above and this write holds the key.
      if (isUniqueViolation(error)) throw conflict(`Task ${id} is unique and another run with the same key is live; it cannot be retried until that run ends`);
      throw error;
    });
    if (!event) throw conflict(`Task ${id} changed state; try again`);
    // The run as this retry left it, not read back: an engine may have started it meanwhile.
    const fresh: TaskRecord = { ...record, ...patch, state: 'PENDING', updatedAt: now };
    await this.engine.enqueue([fresh]);
    return fresh;
  }

  /** True from the start of a shutdown: this process takes no new work (readiness says so). */
  get isDraining(): boolean {
    return this.draining !== null;
  }

  /**
   * The first half of a graceful stop: maintenance stops, no more work is taken, running tasks get
   * the grace period and the rest go back to the queue. The ledger stays open (reads and launches
   * still work, for other processes to run) until `close()`.
   */
  drain(): Promise<void> {
    return (this.draining ??= (async () => {
      await this.maintenance.stop();
      if (this.options.execute !== false) await this.engine.stop(this.options.shutdownGraceMs ?? 10_000);
    })());
  }

  // ---- batch operations and queue control -----------------------------------------------

  /**
   * Cancels every live run matching `filter` within `scope`, page by page, each through `cancel`
   * (so a bulk cancel means exactly what a single one does). Running runs are asked to stop and
   * not waited for.
   */
  bulkCancel(filter: BulkFilter, options: BulkOptions & Omit<CancelOptions, 'waitMs'> = {}, scope: TenantScope = '*'): Promise<BulkReport> {
    const states = bulkStates(filter.states, [...LIVE_STATES], 'cancel');
    return this.bulk({ ...filter, states }, options, scope, (id) => this.cancel(id, { hard: options.hard, reason: options.reason, waitMs: 0 }, scope));
  }

  /** Retries every FAILURE or REVOKED run matching `filter` within `scope`, each through `retry`. */
  bulkRetry(filter: BulkFilter, options: BulkOptions = {}, scope: TenantScope = '*'): Promise<BulkReport> {
    const states = bulkStates(filter.states, ['FAILURE', 'REVOKED'], 'retry');
    return this.bulk({ ...filter, states }, options, scope, (id) => this.retry(id, scope));
  }

  /** Pages through the matches (never all in memory), acting on a few runs at a time; a refused run is skipped. */
  private async bulk(filter: BulkFilter, options: BulkOptions, scope: TenantScope, act: (id: string) => Promise<unknown>): Promise<BulkReport> {
    const report: BulkReport = { matched: 0, acted: 0, skipped: 0, sample: [], dryRun: options.dryRun ?? false };
    const sampleSize = options.sampleSize ?? 20;
    await this.eachPage(filter, scope, async (page) => {
      report.matched += page.length;
      for (const r of page) if (report.sample.length < sampleSize) report.sample.push(r.id);
      if (report.dryRun) return;
      for (let i = 0; i < page.length; i += BULK_PARALLEL) {
        const outcomes = await Promise.allSettled(page.slice(i, i + BULK_PARALLEL).map((r) => act(r.id)));
        for (const outcome of outcomes) {
          if (outcome.status === 'fulfilled') report.acted++;
          else if (outcome.reason instanceof TaskyardError && ['conflict', 'task_not_found'].includes(outcome.reason.code)) report.skipped++;
          else throw outcome.reason;
        }
      }
    });
    return report;
  }

  /** Every run matching `filter`, a page at a time, newest first; ids page the list, so runs the action moves out of the filter shift nothing. */
  private async eachPage(filter: BulkFilter, scope: TenantScope, visit: (page: TaskRecord[]) => Promise<void>): Promise<void> {
    for (let cursor: string | undefined; ; ) {
      const page = await this.store.list({ ...filter, limit: BULK_PAGE, cursor }, scope);
      if (page.tasks.length > 0) await visit(page.tasks);
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }

  /** Pauses a queue or task type for every process sharing the ledger: its runs are still launched, and none starts until it is resumed. */
  async pause(kind: PauseKind, name: string, pausedBy: string | null = null): Promise<Pause> {
    await this.assertPausable(kind, name);
    const pause: Pause = { kind, name, pausedAt: Date.now(), pausedBy };
    await this.store.setPaused(pause, true);
    await this.engine.pausesChanged?.();
    return (await this.store.pauses()).find((p) => p.kind === kind && p.name === name) ?? pause;
  }

  /** Ends a pause; returns whether there was one. */
  async resume(kind: PauseKind, name: string): Promise<boolean> {
    await this.assertPausable(kind, name);
    const resumed = await this.store.setPaused({ kind, name, pausedAt: Date.now(), pausedBy: null }, false);
    await this.engine.pausesChanged?.();
    return resumed;
  }

  pauses(): Promise<Pause[]> {
    return this.store.pauses();
  }

  /** Queues that definitions name, hold waiting runs or are paused, with their depth within `scope`. */
  async queues(scope: TenantScope = '*'): Promise<QueueInfo[]> {
    const [stats, pauses] = await Promise.all([this.store.stats(scope, Date.now()), this.store.pauses()]);
    const paused = new Set(pauses.filter((p) => p.kind === 'queue').map((p) => p.name));
    const byQueue = new Map<string, string[]>();
    for (const d of this.registry.publicDefinitions()) byQueue.set(d.queue, [...(byQueue.get(d.queue) ?? []), d.name]);
    const names = new Set([...byQueue.keys(), ...Object.keys(stats.queueDepth.byQueue), ...paused]);
    return [...names].sort().map((name) => ({
      name,
      paused: paused.has(name),
      waiting: stats.queueDepth.byQueue[name] ?? 0,
      taskTypes: byQueue.get(name) ?? [],
    }));
  }

  /**
   * Revokes every waiting (PENDING or RETRY) run of `queue` within `scope`, page by page, with the
   * reason in each run's timeline; their jobs leave the engine (Redis, on BullMQ).
   */
  async purge(queue: string, reason: string | null = null, scope: TenantScope = '*'): Promise<BulkReport> {
    await this.assertPausable('queue', queue);
    const why = reason ? `purged: ${reason}` : `queue ${queue} purged`;
    const report: BulkReport = { matched: 0, acted: 0, skipped: 0, sample: [], dryRun: false };
    await this.eachPage({ queues: [queue], states: ['PENDING', 'RETRY'] }, scope, async (page) => {
      report.matched += page.length;
      const events = await this.store.apply(page.map((r) => ({ ...revokedChange(r, why, false), from: ['PENDING', 'RETRY'] })));
      const revoked = page.filter((_, i) => events[i]);
      report.acted += revoked.length;
      report.skipped += page.length - revoked.length;
      for (const r of revoked) if (report.sample.length < 20) report.sample.push(r.id);
      await Promise.all(revoked.map((r) => this.engine.forget(r)));
    });
    return report;
  }

  /** A queue is known when a definition names it or a run waits in it; a task type, when it is registered. */
  private async assertPausable(kind: PauseKind, name: string): Promise<void> {
    if (kind === 'task_type') {
      if (!this.registry.has(name)) throw notFound(`Unknown task type: ${name}`);
      return;
    }
    if (this.registry.all().some((d) => d.queue === name)) return;
    if ((await this.store.pauses()).some((p) => p.kind === 'queue' && p.name === name)) return;
    const waiting = await this.store.list({ queues: [name], states: ['PENDING', 'RETRY'], limit: 1 }, '*');
    if (waiting.tasks.length === 0) throw notFound(`Unknown queue: ${name} (no task type runs in it and no run waits in it)`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drain();
    await this.feed.stop();
    await this.heartbeat.leave().catch((error) => this.logger.warn({ err: error }, 'could not remove the worker row'));
    await this.store.close();
  }
}

/**
 * The answer to a repeated idempotency key: the first run, when it is the same launch. As with
 * Stripe's idempotency keys, reusing a key for another task or other params is a conflict that
 * says so, never a silent answer with the wrong run.
 */
function repeatedLaunch(existing: TaskRecord, requested: TaskRecord, scope: TenantScope): TaskRecord {
  const key = JSON.stringify(requested.idempotencyKey);
  // Keys are looked up within the caller's tenant, so this holds; a record outside the scope
  // must never be answered all the same.
  if (!inScope(existing.tenantId, scope)) throw conflict(`Idempotency key ${key} is already in use; choose another`);
  if (existing.name !== requested.name) {
    throw conflict(`Idempotency key ${key} was already used for task type ${existing.name}, not ${requested.name}; use a new key`);
  }
  if (canonicalJson(existing.params) !== canonicalJson(requested.params)) {
    throw conflict(`Idempotency key ${key} was already used with different params; use a new key for a different launch`);
  }
  return existing;
}

/** Runs a bulk action reads per page, and acts on at once. */
const BULK_PAGE = 500;
const BULK_PARALLEL = 16;

/** The states a bulk action looks at: those asked for, which must be ones it applies to, else all of those. */
function bulkStates(asked: TaskState[] | undefined, allowed: TaskState[], action: string): TaskState[] {
  const wrong = asked?.filter((s) => !allowed.includes(s)) ?? [];
  if (wrong.length > 0) {
    const message = `${action} applies to ${allowed.join(', ')} runs, not ${wrong.join(', ')}`;
    throw new TaskyardError('invalid_params', `Invalid state: ${message}`, [{ field: 'state', message }]);
  }
  return asked?.length ? asked : allowed;
}

/** The ledger refused a write for a unique index (SQLite, PostgreSQL). */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

const inScope = (tenantId: string | null, scope: TenantScope) => scope === '*' || (tenantId !== null && scope.includes(tenantId));

/** A worker as a caller limited to some tenants sees it: only their runs, active or counted. */
function workerInScope(worker: WorkerInfo, scope: TenantScope): WorkerInfo {
  if (scope === '*') return worker;
  const tenants = [...new Set(scope)].filter((t) => Object.hasOwn(worker.processedByTenant, t));
  const processedByTenant = Object.fromEntries(tenants.map((t) => [t, worker.processedByTenant[t]!]));
  return {
    ...worker,
    active: worker.active.filter((run) => inScope(run.tenantId, scope)),
    processed: tenants.reduce((sum, t) => sum + processedByTenant[t]!, 0),
    processedByTenant,
  };
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

const OUTCOME_OF: Partial<Record<TaskRecord['state'], Attempt['outcome']>> = {
  STARTED: 'running',
  SUCCESS: 'succeeded',
  FAILURE: 'failed',
  REVOKED: 'revoked',
};

/** A run's only attempt, from its record; null when the record cannot tell it (a retry is pending). */
function singleAttempt(record: TaskRecord): Attempt | null {
  const outcome = OUTCOME_OF[record.state];
  if (!outcome || record.startedAt === null) return null;
  const revoked = outcome === 'revoked';
  return {
    attempt: 1,
    worker: record.worker,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    outcome,
    error: revoked ? record.revokeReason : outcome === 'failed' ? record.error : null,
    traceback: outcome === 'failed' ? record.traceback : null,
  };
}
