import type { AnyTaskDefinition } from '../core/definition.js';
import { CancelledError, HardTimeoutError, isBackendUnavailable, NonRetryableError, SoftTimeoutError } from '../core/errors.js';
import type { TaskEvent } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskChange } from '../store/types.js';
import {
  createContext,
  errorText,
  logChange,
  outcomeChange,
  progressChange,
  revokedChange,
  DEFAULT_LIMITS,
  type ContextSink,
  type RunOutcome,
} from './execution.js';
import { runInThread, type ThreadRun } from './local/thread.js';
import type { ActiveRun, CancelRequest, EngineContext } from './types.js';

/** Told once a run's outcome is in the ledger: the change written, and whether it applied. */
export type OutcomeListener = (change: TaskChange, applied: boolean) => void;

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
  onRecorded: OutcomeListener | undefined;
  onDecided: (() => void) | undefined;
}

interface Outcome {
  run: Run;
  change: TaskChange;
  outcome?: RunOutcome;
}

/**
 * Runs claimed records, whichever engine claimed them: the task context, soft and hard timeouts,
 * abort, thread isolation, cancel, and the outcome written to the ledger (success, retry with
 * backoff, failure, or REVOKED). Outcomes decided in one event-loop turn are written with one
 * apply, so the store group-commits them. Engines differ only in how they get their records.
 *
 * `onFinished` is called when a run's slot frees up; the engine then calls `flushOutcomes()`
 * (the local engine does it in the same turn as its next claim, so both share one commit).
 */
export class RunSupervisor {
  private readonly running = new Map<string, Run>();
  private outcomes: Outcome[] = [];
  private readonly outcomeWrites = new Set<Promise<unknown>>();
  /** Outcomes waiting for the ledger to come back (see recordWhenBack). */
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  processed = 0;
  readonly processedByTenant = new Map<string, number>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly onFinished: () => void,
  ) {}

  get size(): number {
    return this.running.size;
  }

  has(id: string): boolean {
    return this.running.has(id);
  }

  records(): TaskRecord[] {
    return [...this.running.values()].map((run) => run.record);
  }

  private get limits() {
    return this.ctx.limits ?? DEFAULT_LIMITS;
  }

  private definitionOf(record: TaskRecord): AnyTaskDefinition | undefined {
    return this.ctx.registry.has(record.name) ? this.ctx.registry.get(record.name) : undefined;
  }

  /**
   * Starts a record this process has claimed (STARTED, owned by it). `onDecided` is told when its
   * outcome is decided (the slot is free), `onRecorded` once the outcome is in the ledger.
   */
  start(record: TaskRecord, onRecorded?: OutcomeListener, onDecided?: () => void): void {
    const definition = this.definitionOf(record);
    const run: Run = { record, definition, controller: null, abortReason: undefined, aborted: false, thread: null, softCancel: null, settled: false, timers: null, onRecorded, onDecided };
    this.running.set(record.id, run);
    if (!definition) {
      this.settle(run, { ok: false, error: new NonRetryableError(`Task type ${record.name} is not registered in this process`) });
      return;
    }
    const sink: ContextSink = {
      progress: async (percent, message) => {
        if (run.settled) return;
        const clamped = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
        await this.ctx.store.apply([progressChange(record, clamped, message, this.limits.maxMessageChars)]);
      },
      log: (message, data) => {
        if (!run.settled) void this.ctx.store.apply([logChange(record, message, data, this.limits.maxMessageChars)]).catch(() => {});
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
    const now = Date.now();
    // A soft-cancelled run ends REVOKED however it ends; what it returned is kept for inspection.
    if (run.softCancel) this.finish(run, revokedChange(run.record, run.softCancel.reason, false, now, outcome), outcome);
    else this.finish(run, outcomeChange(run.record, run.definition, outcome, now, this.limits.maxResultBytes), outcome);
  }

  private finish(run: Run, change: TaskChange, outcome?: RunOutcome): void {
    if (run.settled) return;
    run.settled = true;
    if (run.timers) for (const timer of run.timers) clearTimeout(timer);
    this.processed++;
    const tenant = run.record.tenantId;
    if (tenant !== null) this.processedByTenant.set(tenant, (this.processedByTenant.get(tenant) ?? 0) + 1);
    this.running.delete(run.record.id);
    // Recorded by the engine's next flush, together with every other outcome of this turn.
    this.outcomes.push({ run, change, outcome });
    run.onDecided?.();
    this.onFinished();
    if (this.running.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Writes the outcomes decided so far with one apply (one commit). */
  flushOutcomes(): Promise<unknown> | null {
    if (this.outcomes.length === 0) return null;
    const outcomes = this.outcomes;
    this.outcomes = [];
    const write: Promise<unknown> = this.ctx.store
      .apply(outcomes.map((o) => o.change))
      .then(
        async (events) => {
          const refused = outcomes.filter((o, i) => events[i] === null && o.change.to !== 'REVOKED');
          for (let i = 0; i < outcomes.length; i++) {
            const o = outcomes[i]!;
            if (o.run.onRecorded && (events[i] !== null || o.change.to === 'REVOKED')) o.run.onRecorded(o.change, events[i] !== null);
          }
          await this.revokeRefused(refused);
        },
        () => Promise.all(outcomes.map((o) => this.recordAlone(o.run, o.change))),
      )
      .finally(() => this.outcomeWrites.delete(write));
    this.outcomeWrites.add(write);
    return write;
  }

  /**
   * The ledger refused these outcomes: a cancel was requested meanwhile (perhaps through another
   * process), so the run ends REVOKED, keeping what it returned.
   */
  private async revokeRefused(refused: Outcome[]): Promise<void> {
    if (refused.length === 0) return;
    const told = new Set<Run>();
    try {
      const records = await this.ctx.store.getMany(refused.map((o) => o.run.record.id));
      const revoked: Outcome[] = [];
      for (const record of records) {
        if (record.state !== 'STARTED' || record.cancelRequested === null) continue;
        const o = refused.find((r) => r.run.record.id === record.id)!;
        revoked.push({ run: o.run, change: revokedChange(record, record.revokeReason, record.cancelRequested === 'hard', Date.now(), o.outcome) });
      }
      if (revoked.length === 0) return;
      const events = await this.ctx.store.apply(revoked.map((o) => o.change));
      revoked.forEach((o, i) => {
        told.add(o.run);
        o.run.onRecorded?.(o.change, events[i] !== null);
      });
    } finally {
      // Whatever became of the others, their listeners must not wait forever.
      for (const o of refused) if (!told.has(o.run)) o.run.onRecorded?.(o.change, false);
    }
  }

  /** After a batch was refused, each outcome on its own, so one bad change cannot hold back the rest. */
  private async recordAlone(run: Run, change: TaskChange): Promise<void> {
    try {
      const [event] = await this.ctx.store.apply([change]);
      run.onRecorded?.(change, event !== null);
    } catch (error) {
      if (isBackendUnavailable(error)) {
        this.recordWhenBack(run, change);
        return;
      }
      if (change.event !== 'succeeded') {
        this.ctx.logger.error({ err: error, task_id: change.id }, 'could not record the outcome');
        run.onRecorded?.(change, false);
        return;
      }
      // The result cannot be stored (e.g. it is not JSON): the run fails instead of staying STARTED.
      const failure = new NonRetryableError(`The result could not be stored: ${errorText(error).message}`);
      const fallback = outcomeChange(run.record, run.definition, { ok: false, error: failure });
      const applied = await this.ctx.store.apply([fallback]).then(
        ([event]) => event !== null,
        (err) => {
          this.ctx.logger.error({ err, task_id: change.id }, 'could not record the outcome');
          return false;
        },
      );
      run.onRecorded?.(fallback, applied);
    }
  }

  /**
   * The ledger is down: the outcome is written once it is back, with backoff, so the run converges
   * to its true state without a restart. Only while this worker still owns the run: if the outage
   * outlasted the lease and the run was rescued (and perhaps run again elsewhere), this one is late.
   */
  private recordWhenBack(run: Run, change: TaskChange, delayMs = 250): void {
    if (this.stopped) {
      this.ctx.logger.warn({ task_id: change.id }, 'the ledger is unavailable at shutdown: the run will be rescued after its lease');
      run.onRecorded?.(change, false);
      return;
    }
    const guarded: TaskChange = { ...change, worker: run.record.worker ?? undefined };
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      this.ctx.store.apply([guarded]).then(
        ([event]) => run.onRecorded?.(change, event !== null),
        (error) => {
          if (isBackendUnavailable(error)) this.recordWhenBack(run, change, Math.min(delayMs * 2, 5000));
          else {
            this.ctx.logger.error({ err: error, task_id: change.id }, 'could not record the outcome');
            run.onRecorded?.(change, false);
          }
        },
      );
    }, delayMs);
    timer.unref();
    this.retries.add(timer);
  }

  /**
   * Committed events from any process: a cancel request for a run held here stops it (the owner
   * records REVOKED).
   */
  onEvents(events: TaskEvent[]): void {
    for (const event of events) {
      if (event.type !== 'cancel_requested') continue;
      const run = this.running.get(event.taskId);
      if (!run) continue;
      const hard = event.data?.hard === true;
      if (run.settled || (!hard && run.softCancel)) continue;
      const reason = typeof event.data?.reason === 'string' ? event.data.reason : null;
      void this.cancel(run.record.id, { hard, reason });
    }
  }

  /**
   * Cancels a run held here. Hard: killed if isolated in a thread, otherwise abandoned (REVOKED
   * now, whatever it returns later is discarded). Soft: its signal is aborted and it ends REVOKED
   * however it ends. Returns false if the run is not held here.
   */
  async cancel(id: string, request: CancelRequest): Promise<boolean> {
    const run = this.running.get(id);
    if (!run || run.settled) return false;
    const reason = new CancelledError(request.reason, request.hard);
    if (request.hard) {
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

  active(): ActiveRun[] {
    return [...this.running.values()].map((r) => ({
      id: r.record.id,
      name: r.record.name,
      tenantId: r.record.tenantId,
      params: r.record.params,
      startedAt: r.record.startedAt ?? Date.now(),
    }));
  }

  /**
   * Graceful stop, once the engine takes no more work: running work gets `graceMs` to finish; the
   * rest goes back to PENDING as if this attempt never started. Returns the requeued runs.
   */
  async stop(graceMs: number): Promise<TaskRecord[]> {
    if (this.running.size > 0) {
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
    }
    // Outcomes already decided are written before anything is requeued.
    this.flushOutcomes();
    await Promise.all(this.outcomeWrites);
    this.stopped = true;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    const leftovers = [...this.running.values()].filter((r) => !r.settled);
    if (leftovers.length === 0) return [];
    const now = Date.now();
    const changes: TaskChange[] = leftovers.map((run) => {
      run.settled = true;
      run.onDecided?.();
      if (run.timers) for (const timer of run.timers) clearTimeout(timer);
      this.abort(run, new Error('Worker shutting down'));
      run.thread?.terminate();
      // Back in the queue, as if this attempt never started.
      return {
        id: run.record.id,
        to: 'PENDING',
        from: ['STARTED'],
        patch: { attempt: run.record.attempt - 1, worker: null, startedAt: null, runAt: now },
        event: 'enqueued',
        data: { requeued: 'shutdown' },
      };
    });
    const events = await this.ctx.store.apply(changes);
    this.running.clear();
    leftovers.forEach((run, i) => run.onRecorded?.(changes[i]!, events[i] !== null));
    return leftovers
      .filter((_, i) => events[i] !== null)
      .map((run) => ({ ...run.record, state: 'PENDING' as const, attempt: run.record.attempt - 1, worker: null, startedAt: null, runAt: now }));
  }
}
