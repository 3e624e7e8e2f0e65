import { hostname } from 'node:os';
import type { Job, Queue, Worker } from 'bullmq';
import type { AnyTaskDefinition } from '../../core/definition.js';
import { backendUnavailable } from '../../core/errors.js';
import type { TaskEvent, TaskEventType } from '../../core/events.js';
import type { TaskRecord } from '../../core/record.js';
import type { TaskChange } from '../../store/types.js';
import { DEFAULT_SWEEPER, Sweeper, type SweeperOptions } from '../../maintenance/sweeper.js';
import type { Broker, BrokerJob, WaitingKind } from '../../maintenance/broker.js';
import type { MaintenanceService } from '../../maintenance/service.js';
import { PauseWatch } from '../pauses.js';
import { revokedChange } from '../execution.js';
import { RunSupervisor } from '../supervisor.js';
import type { CancelRequest, Engine, EngineContext, EngineInfo } from '../types.js';
import { runLimitsByName } from '../limits.js';
import { BullFairness } from './fairness.js';
import { RunSlots } from './slots.js';
import { jobIdOf, jobOf, runningJobIdOf, taskIdOfJob, type JobData } from './jobs.js';
import { closeConnections, describeRedisUrl, loadBullmq, openConnections, type RedisConnections } from './redis.js';

export interface BullMQEngineOptions {
  /** `redis://[user:password@]host:port[/db]`. Default `redis://127.0.0.1:6379`. */
  redisUrl?: string;
  /** BullMQ queue name; also the key prefix, so deployments sharing a Redis stay apart. Default `taskyard`. */
  queue?: string;
  /**
   * Run tasks in this process (a worker). False for an API server: it writes runs to the ledger
   * and hands them to Redis, and executes nothing.
   */
  worker?: boolean;
  /** Most runs at once in this worker. Default 20. */
  concurrency?: number;
  /**
   * Jobs this worker takes from Redis beyond `concurrency`, started in the ledger ahead of a free
   * slot. Each start is a ledger commit, which otherwise holds a slot while nothing runs: for
   * short tasks, prefetch keeps the slots busy. A prefetched run is STARTED in the ledger while it
   * waits for a slot, so keep it 0 (the default) for long tasks.
   */
  prefetch?: number;
  /** How long start-up waits for Redis before failing with a clear error. Default 5 s. */
  connectTimeoutMs?: number;
  /** The leader's sweeper, which re-dispatches waiting runs that never reached Redis. */
  sweeper?: Partial<SweeperOptions>;
  /** Dispatch each run behind its tenant's backlog (see fairness.ts). Default true. */
  fair?: boolean;
}

const NAME = 'bullmq';

/**
 * How long a job of a paused queue or task type waits in Redis (delayed) before a worker looks at
 * it again. Taskyard queues share one BullMQ queue, so a pause is never BullMQ's whole-queue pause.
 */
const PAUSED_RECHECK_MS = 1000;

/**
 * Runs tasks on BullMQ worker processes, any number of them on any machines, with the ledger
 * (PostgreSQL, or SQLite on one machine) as the single source of truth:
 * - a job names one attempt of one run (see jobs.ts), so dispatch is idempotent;
 * - before running a job, the worker starts the run in the ledger by compare-and-set: a revoked,
 *   finished or already running run is dropped, so a duplicate or stale job never runs;
 * - retries live in the ledger: BullMQ makes one attempt, the worker records RETRY with its
 *   backoff and dispatches the next attempt as a delayed job;
 * - crashed workers are found by the ledger's leases (the rescuer puts their runs back in RETRY)
 *   and the leader's sweeper dispatches them; BullMQ's own stalled re-delivery is off;
 * - cancel requests travel through the ledger's event feed to the worker holding the run.
 */
export class BullMQEngine implements Engine, Broker {
  readonly name = NAME;
  readonly engineName = NAME;
  private readonly redisUrl: string;
  private readonly queueName: string;
  private readonly isWorker: boolean;
  private readonly workerConcurrency: number;
  private readonly prefetch: number;
  /** With prefetch: the `concurrency` slots that started runs wait for, and the runs waiting. */
  private slots: RunSlots<CancelRequest | 'stopping'> | null = null;
  private readonly prefetched = new Map<string, TaskRecord>();
  private readonly connectTimeoutMs: number;
  private readonly sweeperOptions: Partial<SweeperOptions>;
  private readonly fair: boolean;
  /** Fair dispatch and the definitions' limits (set at start). */
  private fairness: BullFairness | null = null;
  private ctx: EngineContext | null = null;
  private connections: RedisConnections | null = null;
  private connecting: Promise<void> | null = null;
  private queue: Queue<JobData> | null = null;
  private worker: Worker<JobData> | null = null;
  private supervisor: RunSupervisor | null = null;
  /** Paused queues and task types: a job of one goes back to Redis, delayed, until the pause ends. */
  private pauses: PauseWatch | null = null;
  private DelayedError: (new () => Error) | null = null;
  private workerName = '';
  private startedAt = Date.now();
  private stopping = false;
  private stopped = false;
  /** Starts asked for in this event-loop turn, made with one store call (one commit). */
  private starts: Array<{ id: string; resolve: (record: TaskRecord | null) => void; reject: (error: unknown) => void }> = [];
  private startScheduled = false;
  private startInFlight = false;
  private outcomeFlushScheduled = false;
  /** Jobs taken from Redis while stopping and not run: added back once the worker has closed. */
  private readonly handBack: TaskRecord[] = [];

  constructor(options: BullMQEngineOptions = {}) {
    this.redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
    this.queueName = options.queue ?? 'taskyard';
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(this.queueName)) throw new Error(`queue must be letters, digits, '_', '.' or '-', got ${JSON.stringify(this.queueName)}`);
    this.isWorker = options.worker ?? true;
    this.workerConcurrency = options.concurrency ?? 20;
    if (!Number.isInteger(this.workerConcurrency) || this.workerConcurrency < 1) throw new Error('concurrency must be an integer >= 1');
    this.prefetch = options.prefetch ?? 0;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new Error('prefetch must be an integer >= 0');
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.sweeperOptions = options.sweeper ?? {};
    this.fair = options.fair ?? true;
  }

  /** Runs at once in this process: none unless it is a worker. */
  get concurrency(): number | undefined {
    return this.isWorker ? this.workerConcurrency : undefined;
  }

  /** Whether Redis is connected right now (new runs are refused while it is not). */
  get available(): boolean {
    return this.connections?.producer.status === 'ready';
  }

  async start(context: EngineContext): Promise<void> {
    this.ctx = context;
    this.startedAt = Date.now();
    this.workerName = context.workerId ?? `${NAME}@${hostname()}:${process.pid}`;
    this.fairness = new BullFairness(context.store, context.logger, runLimitsByName(context.registry.all()));
    await this.connect();
    if (!this.isWorker) return;
    const { bullmq } = await loadBullmq();
    this.DelayedError = bullmq.DelayedError;
    this.supervisor = new RunSupervisor(context, () => this.scheduleOutcomeFlush());
    this.pauses = new PauseWatch(context.store, context.logger);
    await this.pauses.start();
    if (this.prefetch > 0) this.slots = new RunSlots(this.workerConcurrency);
    this.worker = new bullmq.Worker<JobData>(this.queueName, (job, token) => this.process(job, token), {
      connection: this.connections!.worker!,
      prefix: this.queueName,
      concurrency: this.workerConcurrency + this.prefetch,
      // The ledger's leases detect crashed workers; a stalled job is failed (and removed), never
      // re-delivered, and the sweeper dispatches the rescued run.
      maxStalledCount: 0,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    });
    this.worker.on('error', (error) => context.logger.warn({ err: error }, 'BullMQ worker error'));
    await this.worker.waitUntilReady();
    context.logger.info({ queue: this.queueName, concurrency: this.workerConcurrency, prefetch: this.prefetch, redis: describeRedisUrl(this.redisUrl) }, 'BullMQ worker ready');
  }

  /** Opens the Redis connections and the queue (once); a clear error if Redis cannot be reached. */
  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const { bullmq, IORedis } = await loadBullmq();
      this.connections = await openConnections(IORedis, this.redisUrl, this.isWorker, this.connectTimeoutMs);
      this.queue = new bullmq.Queue<JobData>(this.queueName, { connection: this.connections.producer, prefix: this.queueName });
      this.queue.on('error', () => {}); // connection errors: the producer reconnects by itself
    })().catch((error) => {
      this.connecting = null;
      throw error;
    });
    return this.connecting;
  }

  /** Redis answers PING on the connection launches use. */
  async ping(): Promise<void> {
    const producer = this.connections?.producer;
    if (!producer || producer.status !== 'ready') throw new Error(`Redis is unavailable (${describeRedisUrl(this.redisUrl)})`);
    await producer.ping();
  }

  /** New runs are refused (503) while Redis is away, rather than written and left waiting. */
  engineFor(_definition: AnyTaskDefinition): string {
    if (this.connections && !this.available) throw backendUnavailable(`Redis is unavailable (${describeRedisUrl(this.redisUrl)})`);
    return NAME;
  }

  services(context: Pick<EngineContext, 'store' | 'logger'>): MaintenanceService[] {
    return [new Sweeper(context.store, this, context.logger, { ...DEFAULT_SWEEPER, ...this.sweeperOptions })];
  }

  // ---- dispatch --------------------------------------------------------------------------------

  /**
   * Hands runs to Redis. They are already in the ledger, so a failed hand-off loses nothing: it is
   * logged, and the leader's sweeper dispatches them once Redis is back.
   */
  async enqueue(records: TaskRecord[]): Promise<void> {
    // Stopped: no new connections to Redis; the runs wait in the ledger for a sweeper.
    if (records.length === 0 || this.stopped) return;
    try {
      await this.dispatch(records);
    } catch (error) {
      this.ctx?.logger.warn({ err: error, count: records.length, task_ids: records.slice(0, 10).map((r) => r.id) }, 'hand-off to Redis failed; the sweeper will dispatch these runs');
    }
  }

  async dispatch(records: TaskRecord[]): Promise<void> {
    await this.connect();
    const now = Date.now();
    const jobs = this.fair && this.fairness ? await this.fairness.jobsOf(records, now) : records.map((record) => jobOf(record, now));
    await this.queue!.addBulk(jobs);
  }

  async missing(records: TaskRecord[]): Promise<TaskRecord[]> {
    return this.withoutKeys(records, jobIdOf);
  }

  broker(): Broker {
    return this;
  }

  // ---- reconciling with the ledger (status sync, orphan cleaner) -------------------------------

  async withoutJob(records: TaskRecord[]): Promise<TaskRecord[]> {
    return this.withoutKeys(records, runningJobIdOf);
  }

  /** BullMQ keeps each kind of waiting job in its own list: `wait`, `prioritized`, `delayed`. */
  async waitingJobs(kind: WaitingKind, start: number, count: number): Promise<BrokerJob[]> {
    await this.connect();
    const ids = await this.queue!.getRanges([kind === 'waiting' ? 'wait' : kind], start, start + count - 1, true);
    return ids.map((jobId) => ({ jobId, taskId: taskIdOfJob(jobId) }));
  }

  async removeJobs(jobIds: readonly string[]): Promise<number> {
    await this.connect();
    // remove() answers 0 for a job that is locked (a worker just took it): it stays.
    const results = await Promise.all(jobIds.map((id) => this.queue!.remove(id)));
    return results.filter((n) => n === 1).length;
  }

  /** Of these runs, those whose job (named by `jobId`) is not in Redis. */
  private async withoutKeys(records: TaskRecord[], jobId: (record: TaskRecord) => string): Promise<TaskRecord[]> {
    await this.connect();
    const pipeline = this.connections!.producer.pipeline();
    for (const record of records) pipeline.exists(this.queue!.toKey(jobId(record)));
    const results = (await pipeline.exec()) ?? [];
    return records.filter((_, i) => {
      const [error, exists] = results[i] ?? [new Error('no reply'), 0];
      if (error) throw error;
      return exists === 0;
    });
  }

  /** A waiting run was revoked: its job leaves Redis (a job already taken is dropped at start). */
  async forget(record: TaskRecord): Promise<void> {
    try {
      await this.connect();
      await this.queue!.remove(jobIdOf(record));
    } catch (error) {
      this.ctx?.logger.warn({ err: error, task_id: record.id }, 'could not remove the job from Redis; the worker will drop it');
    }
  }

  // ---- running (workers) -----------------------------------------------------------------------

  private async process(job: Job<JobData>, token: string | undefined): Promise<void> {
    const id = job.data.id;
    if (this.stopping) {
      this.handBack.push(await this.handBackRecord(id));
      return;
    }
    if (token && (await this.paused(job))) {
      await job.moveToDelayed(Date.now() + PAUSED_RECHECK_MS, token);
      throw new this.DelayedError!();
    }
    const record = await this.startRun(id);
    if (!record) {
      // Not startable. Still waiting but not yet due (the job came early, e.g. clocks apart) or
      // held back by its definition's limits: wait in Redis until it may start. Otherwise it was
      // revoked, finished, or runs elsewhere: drop the job.
      const retryAt = this.fairness!.retryAt(await this.ctx!.store.get(id, '*'), Date.now());
      if (retryAt !== null && token) {
        await job.moveToDelayed(retryAt, token);
        throw new this.DelayedError!();
      }
      return;
    }
    if (this.slots && !(await this.slotFor(record))) return;
    // The job ends when the run's outcome is decided, not once it is written: the ledger write is
    // group-committed in the background (a crash before it is a lost worker: the rescuer retries
    // the run), so a slot is not held for a commit round trip.
    await new Promise<void>((resolve) => {
      this.supervisor!.start(
        record,
        (change, applied) => {
          // A retry is the next attempt: a new, delayed job (the ledger holds the backoff).
          if (applied && change.to === 'RETRY') void this.enqueue([{ ...record, state: 'RETRY', runAt: change.patch.runAt ?? Date.now() }]);
        },
        () => {
          this.slots?.release();
          resolve();
        },
      );
    });
  }

  /**
   * A prefetched run waits for a slot. False if it will not run here: cancelled meanwhile (the
   * canceller recorded REVOKED) or the worker is stopping (it goes back to PENDING, and to Redis
   * once the worker has closed).
   */
  private async slotFor(record: TaskRecord): Promise<boolean> {
    const answer = this.stopping ? { granted: false as const, why: 'stopping' as const } : await this.waitForSlot(record);
    if (answer.granted) return true;
    if (answer.why === 'stopping') this.handBack.push(...(await this.requeue([record])));
    return false;
  }

  private async waitForSlot(record: TaskRecord) {
    this.prefetched.set(record.id, record);
    try {
      return await this.slots!.take(record.id);
    } finally {
      this.prefetched.delete(record.id);
    }
  }

  /** A cancel for a prefetched run still waiting for a slot: it never runs, and ends REVOKED now. */
  private async cancelPrefetched(id: string, request: CancelRequest): Promise<boolean> {
    const record = this.prefetched.get(id);
    if (!record || !this.slots!.withdraw(id, request)) return false;
    await this.ctx!.store.apply([revokedChange(record, request.reason, request.hard)]);
    return true;
  }

  /** Started runs that never ran go back to PENDING, as if this attempt never started. */
  private async requeue(records: TaskRecord[]): Promise<TaskRecord[]> {
    const now = Date.now();
    const events = await this.ctx!.store.apply(records.map((record) => requeueChange(record, now)));
    return records.filter((_, i) => events[i] !== null).map((record) => ({ ...record, state: 'PENDING' as const, attempt: record.attempt - 1, worker: null, startedAt: null, runAt: now }));
  }

  /** Whether the job's run is of a paused task type or queue. */
  private async paused(job: Job<JobData>): Promise<boolean> {
    const pauses = this.pauses;
    if (!pauses?.any) return false;
    if (pauses.names.has(job.name)) return true;
    if (pauses.queues.size === 0) return false;
    const queue = job.data.queue ?? (await this.ctx!.store.get(job.data.id, '*'))?.queue;
    return queue !== undefined && pauses.queues.has(queue);
  }

  private async handBackRecord(id: string): Promise<TaskRecord> {
    const current = await this.ctx!.store.get(id, '*');
    if (!current) throw new Error(`task ${id} is not in the ledger`);
    return current;
  }

  /**
   * Starts runs in the ledger with one statement for all the jobs that arrived meanwhile: one
   * start in flight at a time, the next takes everything that queued up behind it (BullMQ hands
   * jobs over one by one, and every ledger commit is a few round trips).
   */
  private startRun(id: string): Promise<TaskRecord | null> {
    return new Promise((resolve, reject) => {
      this.starts.push({ id, resolve, reject });
      if (!this.startScheduled && !this.startInFlight) {
        this.startScheduled = true;
        setImmediate(() => void this.flushStarts());
      }
    });
  }

  private async flushStarts(): Promise<void> {
    this.startScheduled = false;
    const batch = this.starts;
    this.starts = [];
    if (batch.length === 0) return;
    this.startInFlight = true;
    try {
      const ids = batch.map((s) => s.id);
      const started = new Map((await this.ctx!.store.start(ids, this.workerName, Date.now(), this.fairness?.limits)).map((r) => [r.id, r]));
      for (const { id, resolve } of batch) {
        const record = started.get(id) ?? null;
        started.delete(id); // a second job for the same run in this batch gets nothing
        resolve(record);
      }
    } catch (error) {
      for (const { reject } of batch) reject(error);
    } finally {
      this.startInFlight = false;
      if (this.starts.length > 0) void this.flushStarts();
    }
  }

  private scheduleOutcomeFlush(): void {
    if (this.outcomeFlushScheduled) return;
    this.outcomeFlushScheduled = true;
    setImmediate(() => {
      this.outcomeFlushScheduled = false;
      void this.supervisor?.flushOutcomes()?.catch((error) => this.ctx?.logger.error({ err: error }, 'could not record outcomes'));
    });
  }

  async pausesChanged(): Promise<void> {
    await this.pauses?.refresh();
  }

  /** Only a cancel request concerns a BullMQ process (for a run it holds or has prefetched). */
  readonly eventTypes: readonly TaskEventType[] = ['cancel_requested'];

  onEvents(events: TaskEvent[]): void {
    this.supervisor?.onEvents(events);
    if (this.prefetched.size === 0) return;
    for (const event of events) {
      if (event.type !== 'cancel_requested' || !this.prefetched.has(event.taskId)) continue;
      const request = { hard: event.data?.hard === true, reason: typeof event.data?.reason === 'string' ? event.data.reason : null };
      void this.cancelPrefetched(event.taskId, request).catch((error) => this.ctx?.logger.error({ err: error, task_id: event.taskId }, 'could not record the cancel'));
    }
  }

  async cancelRunning(record: TaskRecord, request: CancelRequest): Promise<boolean> {
    if (this.prefetched.has(record.id)) return this.cancelPrefetched(record.id, request);
    return (await this.supervisor?.cancel(record.id, request)) ?? false;
  }

  async info(): Promise<EngineInfo> {
    if (!this.supervisor) return { workers: [] };
    return {
      workers: [
        {
          name: this.workerName,
          engine: NAME,
          host: hostname(),
          pid: process.pid,
          concurrency: this.workerConcurrency,
          active: this.supervisor.active(),
          processed: this.supervisor.processed,
          processedByTenant: Object.fromEntries(this.supervisor.processedByTenant),
          startedAt: this.startedAt,
        },
      ],
    };
  }

  /**
   * Graceful stop: take no more jobs; running work gets `graceMs` to finish, the rest goes back to
   * PENDING in the ledger and back to Redis once this worker's jobs are closed.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    // Prefetched runs still waiting never start: each goes back to PENDING (see slotFor).
    for (const id of this.slots?.waiting ?? []) this.slots!.withdraw(id, 'stopping');
    let requeued: TaskRecord[] = [];
    this.pauses?.stop();
    if (this.worker) {
      await this.worker.pause(true).catch(() => {});
      requeued = (await this.supervisor?.stop(graceMs)) ?? [];
      await this.worker.close().catch((error) => this.ctx?.logger.warn({ err: error }, 'closing the BullMQ worker failed'));
    }
    const giveBack = [...requeued, ...this.handBack.filter((r) => r.state === 'PENDING' || r.state === 'RETRY')];
    if (giveBack.length > 0) await this.enqueue(giveBack);
    await this.queue?.close().catch(() => {});
    this.stopped = true;
    if (this.connections) closeConnections(this.connections);
    this.connections = null;
    this.connecting = null;
  }
}

/** Back to PENDING, as if this attempt never started (a graceful stop does the same with running work). */
function requeueChange(record: TaskRecord, now: number): TaskChange {
  return {
    id: record.id,
    to: 'PENDING',
    from: ['STARTED'],
    patch: { attempt: record.attempt - 1, worker: null, startedAt: null, runAt: now },
    event: 'enqueued',
    data: { requeued: 'shutdown' },
  };
}
