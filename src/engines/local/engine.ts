import { hostname } from 'node:os';
import type { AnyTaskDefinition } from '../../core/definition.js';
import type { TaskEvent } from '../../core/events.js';
import type { TaskRecord } from '../../core/record.js';
import type { ClaimOptions, RunLimits } from '../../store/types.js';
import { runLimitsOf } from '../limits.js';
import { PauseWatch } from '../pauses.js';
import { RunSupervisor } from '../supervisor.js';
import type { CancelRequest, Engine, EngineContext, EngineInfo } from '../types.js';

export interface LocalEngineOptions {
  /** Most runs at once in this process. */
  concurrency?: number;
  /** Per-queue limits, e.g. `{ heavy: 2 }`. Queues not named share the global limit. */
  queues?: Record<string, number>;
  /** Safety-net poll for due delayed runs; new work wakes the engine at once. */
  pollIntervalMs?: number;
  workerName?: string;
  /**
   * Claim only runs recorded for these engines (the hybrid engine's local half takes the `local`
   * runs and leaves the rest to its workers). All runs when absent.
   */
  engines?: string[];
  /**
   * Round-robin across tenants within a priority (default): one tenant launching thousands of
   * runs does not hold back the others. False claims in strict priority, run_at, id order.
   */
  fair?: boolean;
}

/**
 * The embedded engine: the queue is the ledger table itself, in the same SQLite file, so a
 * run is never in the queue without being in the ledger. Claims, progress and outcomes are
 * group-committed by the store.
 */
export class LocalEngine implements Engine {
  readonly name = 'local';
  private ctx!: EngineContext;
  readonly concurrency: number;
  private readonly queueLimits: Record<string, number>;
  private readonly pollIntervalMs: number;
  private workerName: string;
  private readonly engines: string[] | undefined;
  private readonly fair: boolean;
  /** The registry's task names, read once: the registry does not change after start. */
  private knownNames: string[] | null = null;
  /** Runs what this engine claims: context, timers, cancel, outcomes (shared with other engines). */
  private supervisor!: RunSupervisor;
  private pumping = false;
  private pumpAgain = false;
  private cycleScheduled = false;
  private stopping = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private startedAt = Date.now();
  /** Paused queues and task types: their runs wait in the ledger, unclaimed. */
  private pauses!: PauseWatch;
  /** When the last claim looked for due runs: a run due by then and still waiting is not claimable now. */
  private lastClaimAt = 0;

  constructor(options: LocalEngineOptions = {}) {
    this.concurrency = options.concurrency ?? 20;
    this.queueLimits = options.queues ?? {};
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.workerName = options.workerName ?? '';
    this.engines = options.engines;
    this.fair = options.fair ?? true;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new Error('concurrency must be an integer >= 1');
  }

  async start(context: EngineContext): Promise<void> {
    this.ctx = context;
    this.startedAt = Date.now();
    // The owner recorded on each claimed run; runs of a process that is gone are rescued by the
    // leader's rescuer once that process's lease is over (at once, on the same host).
    this.workerName ||= context.workerId ?? `local@${hostname()}:${process.pid}`;
    // Outcomes are written by the next cycle, with the claim that refills the slots: one commit.
    this.supervisor = new RunSupervisor(context, () => this.schedulePump());
    this.pauses = new PauseWatch(context.store, context.logger, () => this.schedulePump());
    await this.pauses.start();
    this.schedulePump();
  }

  /**
   * Committed events, from this process or another sharing the ledger: new work wakes the
   * claim loop, and a cancel request for a run held here stops it.
   */
  onEvents(events: TaskEvent[]): void {
    for (const event of events) {
      if (event.type === 'enqueued' || event.type === 'retry') this.schedulePump();
    }
    this.supervisor?.onEvents(events);
  }

  async enqueue(): Promise<void> {
    this.schedulePump();
  }

  async forget(): Promise<void> {}

  async pausesChanged(): Promise<void> {
    await this.pauses?.refresh();
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
    this.supervisor.flushOutcomes();
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  };

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        if (this.stopping) break;
        const claimed = await this.claim();
        for (const record of claimed) this.supervisor.start(record);
        if (claimed.length > 0 && this.supervisor.size < this.concurrency) this.pumpAgain = true;
      } while (this.pumpAgain);
    } catch (error) {
      this.ctx.logger.error({ err: error }, 'claiming work failed; retrying on the next poll');
    } finally {
      this.pumping = false;
    }
    // Nothing due right now: sleep until the next delayed run, or the poll interval.
    if (!this.stopping && this.supervisor.size < this.concurrency) await this.armWakeTimer();
  }

  /** Claims as many due runs as there are free slots, honouring queue and definition limits. */
  private async claim(): Promise<TaskRecord[]> {
    let free = this.concurrency - this.supervisor.size;
    if (free <= 0) return [];
    const now = Date.now();
    this.lastClaimAt = now;
    const claimed: TaskRecord[] = [];
    // Only task types this process knows: with several processes sharing the ledger, a run of a
    // type registered elsewhere (e.g. webhook deliveries, configured in one process) waits for it.
    const known = (this.knownNames ??= this.ctx.registry.all().map((d) => d.name));
    const take = async (room: number, filter: Pick<ClaimOptions, 'queues' | 'names' | 'excludeQueues' | 'excludeNames'>, limits?: RunLimits) => {
      if (room <= 0 || free <= 0) return [];
      const unpaused = this.unpaused({ names: known, ...filter });
      if (!unpaused) return [];
      const got = await this.ctx.store.claim({ limit: Math.min(room, free), now, worker: this.workerName, engines: this.engines, fair: this.fair, limits, ...unpaused });
      claimed.push(...got);
      free -= got.length;
      return got;
    };
    const limitedQueues = Object.keys(this.queueLimits);
    // Definitions with a limit of their own are claimed apart, one claim each.
    const limitedDefinitions = this.ctx.registry.all().filter((d) => d.concurrency !== null || runLimitsOf(d) !== undefined);
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
    count(this.supervisor.records());
    const queueRoom = (queue: string) => this.queueLimits[queue]! - (byQueue.get(queue) ?? 0);
    const nameRoom = (d: AnyTaskDefinition) => (d.concurrency ?? Infinity) - (byName.get(d.name) ?? 0);
    const limitedNames = limitedDefinitions.map((d) => d.name);
    for (const queue of limitedQueues) count(await take(queueRoom(queue), { queues: [queue], excludeNames: limitedNames }));
    // A definition with its own limit in a limited queue: both limits hold, the tighter wins.
    for (const definition of limitedDefinitions) {
      const limits = runLimitsOf(definition);
      for (const queue of limitedQueues) {
        count(await take(Math.min(nameRoom(definition), queueRoom(queue)), { names: [definition.name], queues: [queue] }, limits));
      }
      count(await take(nameRoom(definition), { names: [definition.name], excludeQueues: limitedQueues }, limits));
    }
    await take(free, { excludeQueues: limitedQueues, excludeNames: limitedNames });
    return claimed;
  }

  /** A claim's filter without the paused queues and task types; null when nothing is left to claim. */
  private unpaused<F extends Pick<ClaimOptions, 'queues' | 'names' | 'excludeQueues' | 'excludeNames'>>(filter: F): F | null {
    if (!this.pauses.any) return filter;
    const { names: pausedNames, queues: pausedQueues } = this.pauses;
    const names = filter.names?.filter((n) => !pausedNames.has(n));
    const queues = filter.queues?.filter((q) => !pausedQueues.has(q));
    if (names?.length === 0 || queues?.length === 0) return null;
    const excludeQueues = [...(filter.excludeQueues ?? []), ...pausedQueues];
    const excludeNames = [...(filter.excludeNames ?? []), ...(filter.names ? [] : pausedNames)];
    return { ...filter, names, queues, excludeQueues, excludeNames: excludeNames.length ? excludeNames : undefined };
  }

  private async armWakeTimer(): Promise<void> {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    let delay = this.pollIntervalMs;
    const next = await this.ctx.store.nextRunAt().catch(() => null);
    // A run that was due at the last claim and still waits is held back (paused, or its limit is
    // full): only a run due later sets an earlier wake-up, or the loop would spin.
    if (next !== null && next > this.lastClaimAt) delay = Math.max(0, Math.min(delay, next - Date.now()));
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.schedulePump();
    }, delay);
    this.wakeTimer.unref();
  }

  async cancelRunning(record: TaskRecord, request: CancelRequest): Promise<boolean> {
    return this.supervisor?.cancel(record.id, request) ?? false;
  }

  async info(): Promise<EngineInfo> {
    return {
      workers: [
        {
          name: this.workerName,
          engine: this.name,
          pid: process.pid,
          concurrency: this.concurrency,
          active: this.supervisor?.active() ?? [],
          processed: this.supervisor?.processed ?? 0,
          processedByTenant: Object.fromEntries(this.supervisor?.processedByTenant ?? []),
          startedAt: this.startedAt,
        },
      ],
    };
  }

  /** Graceful stop: no new claims; running work gets `graceMs` to finish, the rest is requeued. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.pauses?.stop();
    await this.supervisor?.stop(graceMs);
  }
}
