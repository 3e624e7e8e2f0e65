import { hostname } from 'node:os';
import type { AnyTaskDefinition } from '../../core/definition.js';
import { CancelledError, HardTimeoutError, NonRetryableError, SoftTimeoutError } from '../../core/errors.js';
import type { TaskRecord } from '../../core/record.js';
import type { ClaimOptions, TaskChange } from '../../store/types.js';
import {
  createContext,
  errorText,
  logChange,
  outcomeChange,
  progressChange,
  revokedChange,
  type ContextSink,
  type RunOutcome,
} from '../execution.js';
import type { CancelRequest, Engine, EngineContext, EngineInfo } from '../types.js';
import { runInThread, type ThreadRun } from './thread.js';

export interface LocalEngineOptions {
  /** Most runs at once in this process. */
  concurrency?: number;
  /** Per-queue limits, e.g. `{ heavy: 2 }`. Queues not named share the global limit. */
  queues?: Record<string, number>;
  /** Safety-net poll for due delayed runs; new work wakes the engine at once. */
  pollIntervalMs?: number;
  workerName?: string;
}

interface Run {
  record: TaskRecord;
  definition: AnyTaskDefinition | undefined;
  /** Made on first use of `ctx.signal`: most runs never look at it. */
  controller: AbortController | null;
  /** An abort that came before anyone asked for the signal; the signal starts aborted with it. */
  abortReason: unknown;
  aborted: boolean;
  thread: ThreadRun | null;
  softCancel: CancelRequest | null;
  /** Set once the ledger outcome is decided; a late result of an abandoned run is discarded. */
  settled: boolean;
  timers: NodeJS.Timeout[] | null;
}

/**
 * The embedded engine: the queue is the ledger table itself, in the same SQLite file, so a
 * run is never in the queue without being in the ledger. Claims, progress and outcomes are
 * group-committed by the store.
 */
export class LocalEngine implements Engine {
  readonly name = 'local';
  private ctx!: EngineContext;
  private readonly concurrency: number;
  private readonly queueLimits: Record<string, number>;
  private readonly pollIntervalMs: number;
  private readonly workerName: string;
  private readonly running = new Map<string, Run>();
  private pumping = false;
  private pumpAgain = false;
  private cycleScheduled = false;
  /** Outcomes decided in this event-loop turn, recorded with one apply (one commit) per turn. */
  private outcomes: Array<{ run: Run; change: TaskChange }> = [];
  private readonly outcomeWrites = new Set<Promise<unknown>>();
  private stopping = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private processed = 0;
  private startedAt = Date.now();
  private idleWaiters: Array<() => void> = [];

  constructor(options: LocalEngineOptions = {}) {
    this.concurrency = options.concurrency ?? 20;
    this.queueLimits = options.queues ?? {};
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.workerName = options.workerName ?? `local@${hostname()}:${process.pid}`;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new Error('concurrency must be an integer >= 1');
  }

  async start(context: EngineContext): Promise<void> {
    this.ctx = context;
    this.startedAt = Date.now();
    await this.recover();
    this.schedulePump();
  }

  /** Runs left STARTED by a process that died are retried, or failed once their attempts are used. */
  private async recover(): Promise<void> {
    const orphans = await this.ctx.store.findStarted();
    if (orphans.length === 0) return;
    const error = new Error('Worker lost: the process died while the task was running');
    error.name = 'WorkerLostError';
    const changes = orphans.map((record) =>
      outcomeChange(record, this.definitionOf(record), { ok: false, error }, Date.now()),
    );
    // A lost run is retried at once, without backoff: it did not fail on its own.
    for (const change of changes) if (change.to === 'RETRY') change.patch.runAt = Date.now();
    await this.ctx.store.apply(changes);
    this.ctx.logger.warn({ count: orphans.length }, 'recovered runs left STARTED by a previous process');
  }

  async enqueue(): Promise<void> {
    this.schedulePump();
  }

  async forget(): Promise<void> {}

  private definitionOf(record: TaskRecord): AnyTaskDefinition | undefined {
    return this.ctx.registry.has(record.name) ? this.ctx.registry.get(record.name) : undefined;
  }

  /**
   * Runs one cycle at the end of this event-loop turn: the outcomes decided in the turn are
   * written with one apply, then free slots are claimed. Both calls are made in the same turn,
   * so the store group-commits them together: one transaction per cycle, however many runs.
   */
  private schedulePump(): void {
    // Not started (an API-only process): runs wait in the ledger for an engine that is.
    if (!this.ctx || this.cycleScheduled) return;
    this.cycleScheduled = true;
    setImmediate(this.cycle);
  }

  private readonly cycle = (): void => {
    this.cycleScheduled = false;
    this.flushOutcomes();
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  };

  private flushOutcomes(): Promise<unknown> | null {
    if (this.outcomes.length === 0) return null;
    const outcomes = this.outcomes;
    this.outcomes = [];
    const write: Promise<unknown> = this.ctx.store
      .apply(outcomes.map((o) => o.change))
      .catch(() => Promise.all(outcomes.map((o) => this.recordAlone(o.run, o.change))))
      .finally(() => this.outcomeWrites.delete(write));
    this.outcomeWrites.add(write);
    return write;
  }

  /** After a batch was refused, each outcome on its own, so one bad change cannot hold back the rest. */
  private async recordAlone(run: Run, change: TaskChange): Promise<void> {
    try {
      await this.ctx.store.apply([change]);
    } catch (error) {
      if (change.event !== 'succeeded') {
        this.ctx.logger.error({ err: error, taskId: change.id }, 'could not record the outcome');
        return;
      }
      // The result cannot be stored (e.g. it is not JSON): the run fails instead of staying STARTED.
      const failure = new NonRetryableError(`The result could not be stored: ${errorText(error).message}`);
      await this.ctx.store
        .apply([outcomeChange(run.record, run.definition, { ok: false, error: failure })])
        .catch((err) => this.ctx.logger.error({ err, taskId: change.id }, 'could not record the outcome'));
    }
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        if (this.stopping) break;
        const claimed = await this.claim();
        for (const record of claimed) this.startRun(record);
        if (claimed.length > 0 && this.running.size < this.concurrency) this.pumpAgain = true;
      } while (this.pumpAgain);
    } catch (error) {
      this.ctx.logger.error({ err: error }, 'claiming work failed; retrying on the next poll');
    } finally {
      this.pumping = false;
    }
    // Nothing due right now: sleep until the next delayed run, or the poll interval.
    if (!this.stopping && this.running.size < this.concurrency) await this.armWakeTimer();
  }

  /** Claims as many due runs as there are free slots, honouring queue and definition limits. */
  private async claim(): Promise<TaskRecord[]> {
    let free = this.concurrency - this.running.size;
    if (free <= 0) return [];
    const now = Date.now();
    const claimed: TaskRecord[] = [];
    const take = async (room: number, filter: Pick<ClaimOptions, 'queues' | 'names' | 'excludeQueues' | 'excludeNames'>) => {
      if (room <= 0 || free <= 0) return [];
      const got = await this.ctx.store.claim({ limit: Math.min(room, free), now, worker: this.workerName, ...filter });
      claimed.push(...got);
      free -= got.length;
      return got;
    };
    const limitedQueues = Object.keys(this.queueLimits);
    const limitedDefinitions = this.ctx.registry.all().filter((d) => d.concurrency !== null);
    if (limitedQueues.length === 0 && limitedDefinitions.length === 0) {
      await take(free, {});
      return claimed;
    }
    // Runs per queue and per definition, running or just claimed, against the limits.
    const byQueue = new Map<string, number>();
    const byName = new Map<string, number>();
    const count = (records: Iterable<TaskRecord>) => {
      for (const { queue, name } of records) {
        byQueue.set(queue, (byQueue.get(queue) ?? 0) + 1);
        byName.set(name, (byName.get(name) ?? 0) + 1);
      }
    };
    count([...this.running.values()].map((run) => run.record));
    const queueRoom = (queue: string) => this.queueLimits[queue]! - (byQueue.get(queue) ?? 0);
    const nameRoom = (d: AnyTaskDefinition) => d.concurrency! - (byName.get(d.name) ?? 0);
    const limitedNames = limitedDefinitions.map((d) => d.name);
    for (const queue of limitedQueues) count(await take(queueRoom(queue), { queues: [queue], excludeNames: limitedNames }));
    // A definition with its own limit in a limited queue: both limits hold, the tighter wins.
    for (const definition of limitedDefinitions) {
      for (const queue of limitedQueues) {
        count(await take(Math.min(nameRoom(definition), queueRoom(queue)), { names: [definition.name], queues: [queue] }));
      }
      count(await take(nameRoom(definition), { names: [definition.name], excludeQueues: limitedQueues }));
    }
    await take(free, { excludeQueues: limitedQueues, excludeNames: limitedNames });
    return claimed;
  }

  private async armWakeTimer(): Promise<void> {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    let delay = this.pollIntervalMs;
    const next = await this.ctx.store.nextRunAt().catch(() => null);
    if (next !== null) delay = Math.max(0, Math.min(delay, next - Date.now()));
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.schedulePump();
    }, delay);
    this.wakeTimer.unref();
  }

  private startRun(record: TaskRecord): void {
    const definition = this.definitionOf(record);
    const run: Run = { record, definition, controller: null, abortReason: undefined, aborted: false, thread: null, softCancel: null, settled: false, timers: null };
    this.running.set(record.id, run);
    if (!definition) {
      this.settle(run, { ok: false, error: new NonRetryableError(`Task type ${record.name} is not registered in this process`) });
      return;
    }
    const sink: ContextSink = {
      progress: async (percent, message) => {
        if (run.settled) return;
        const clamped = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
        await this.ctx.store.apply([progressChange(record, clamped, message)]);
      },
      log: (message, data) => {
        if (!run.settled) void this.ctx.store.apply([logChange(record, message, data)]).catch(() => {});
      },
    };
    if (definition.softTimeoutMs !== null) {
      const ms = definition.softTimeoutMs;
      (run.timers ??= []).push(setTimeout(() => this.abort(run, new SoftTimeoutError(ms)), ms));
    }
    if (definition.hardTimeoutMs !== null) {
      const ms = definition.hardTimeoutMs;
      (run.timers ??= []).push(
        setTimeout(() => {
          const error = new HardTimeoutError(ms);
          this.abort(run, error);
          run.thread?.terminate();
          this.finish(run, outcomeChange(record, definition, { ok: false, error }));
        }, ms),
      );
    }
    let promise: Promise<unknown>;
    if (definition.isolation === 'thread') {
      if (!this.ctx.tasksModule) {
        promise = Promise.reject(new NonRetryableError(`Task ${record.name} needs isolation 'thread' but no tasksModule is configured`));
      } else {
        run.thread = runInThread(this.ctx.tasksModule, record, sink);
        promise = run.thread.promise;
      }
    } else {
      const context = createContext(record, () => this.signalOf(run), sink);
      // A synchronous throw is a failed run, like a rejection.
      try {
        promise = Promise.resolve(definition.run(record.params, context));
      } catch (error) {
        promise = Promise.reject(error);
      }
    }
    promise.then(
      (result) => this.settle(run, { ok: true, result }),
      (error) => this.settle(run, { ok: false, error }),
    );
  }

  private signalOf(run: Run): AbortSignal {
    if (!run.controller) {
      run.controller = new AbortController();
      if (run.aborted) run.controller.abort(run.abortReason);
    }
    return run.controller.signal;
  }

  private abort(run: Run, reason: unknown): void {
    // The first reason wins, as with AbortController.
    if (!run.aborted) {
      run.aborted = true;
      run.abortReason = reason;
      run.controller?.abort(reason);
    }
    run.thread?.abort(reason);
  }

  private settle(run: Run, outcome: RunOutcome): void {
    if (run.settled) return; // abandoned by a hard cancel or hard timeout: its late result is discarded
    if (run.softCancel) this.finish(run, revokedChange(run.record, run.softCancel.reason, false));
    else this.finish(run, outcomeChange(run.record, run.definition, outcome));
  }

  private finish(run: Run, change: TaskChange): void {
    if (run.settled) return;
    run.settled = true;
    if (run.timers) for (const timer of run.timers) clearTimeout(timer);
    this.processed++;
    this.running.delete(run.record.id);
    // Recorded by the next cycle, together with every other outcome of this turn and the claim
    // that refills the slots: one commit.
    this.outcomes.push({ run, change });
    this.schedulePump();
    if (this.running.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  async cancelRunning(record: TaskRecord, request: CancelRequest): Promise<boolean> {
    const run = this.running.get(record.id);
    if (!run || run.settled) return false;
    const reason = new CancelledError(request.reason, request.hard);
    if (request.hard) {
      // Killed if isolated; otherwise abandoned: REVOKED now, whatever it returns is discarded.
      this.abort(run, reason);
      run.thread?.terminate();
      this.finish(run, revokedChange(run.record, request.reason, true));
      // Answer once REVOKED is committed, so the caller reads it back.
      await this.flushOutcomes();
    } else {
      run.softCancel = request;
      this.abort(run, reason);
    }
    return true;
  }

  async info(): Promise<EngineInfo> {
    return {
      workers: [
        {
          name: this.workerName,
          engine: this.name,
          pid: process.pid,
          concurrency: this.concurrency,
          active: [...this.running.values()].map((r) => ({
            id: r.record.id,
            name: r.record.name,
            params: r.record.params,
            startedAt: r.record.startedAt ?? Date.now(),
          })),
          processed: this.processed,
          startedAt: this.startedAt,
        },
      ],
    };
  }

  /** Graceful stop: no new claims; running work gets `graceMs` to finish, the rest is requeued. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.running.size > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    // Outcomes already decided are written before anything is requeued.
    this.flushOutcomes();
    await Promise.all(this.outcomeWrites);
    const leftovers = [...this.running.values()].filter((r) => !r.settled);
    if (leftovers.length === 0) return;
    const changes: TaskChange[] = leftovers.map((run) => {
      run.settled = true;
      if (run.timers) for (const timer of run.timers) clearTimeout(timer);
      this.abort(run, new Error('Worker shutting down'));
      run.thread?.terminate();
      // Back in the queue, as if this attempt never started.
      return {
        id: run.record.id,
        to: 'PENDING',
        from: ['STARTED'],
        patch: { attempt: run.record.attempt - 1, worker: null, startedAt: null, runAt: Date.now() },
        event: 'enqueued',
        data: { requeued: 'shutdown' },
      };
    });
    await this.ctx.store.apply(changes);
    this.running.clear();
  }
}
