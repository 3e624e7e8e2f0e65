import type { AnyTaskDefinition } from '../core/definition.js';
import { backendUnavailable } from '../core/errors.js';
import type { TaskEvent } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import type { MaintenanceService } from '../maintenance/service.js';
import type { BullMQEngine } from './bullmq/engine.js';
import { LocalEngine, type LocalEngineOptions } from './local/engine.js';
import type { CancelRequest, Engine, EngineContext, EngineInfo } from './types.js';

/** What a heavy launch does while Redis is unreachable. */
export type RedisFallback = 'refuse' | 'local';

export interface HybridEngineOptions {
  /** The local engine that runs light tasks here; its claims are limited to runs recorded for `local`. */
  local?: Omit<LocalEngineOptions, 'engines'>;
  /** Hands heavy tasks to BullMQ workers. */
  remote: BullMQEngine;
  /**
   * The heavy task names, replacing each definition's `route` (the seed's HEAVY_TASKS). Absent:
   * `route: 'heavy'` definitions are heavy.
   */
  heavyTasks?: readonly string[] | null;
  /**
   * While Redis is unreachable: `refuse` heavy launches with a 503 (default), or run them here.
   * Running them here would put heavy work in the process the deployment kept it out of, so it
   * is opt-in.
   */
  redisFallback?: RedisFallback;
  /** Run light tasks in this process (default true); false leaves them to other hybrid processes. */
  executeLocal?: boolean;
}

/**
 * Routes each definition: light tasks run in process on the local engine, heavy ones on BullMQ
 * workers. The engine chosen at launch is recorded on the run (`engine`), so every process
 * agrees on who runs it, and the record says which engine did.
 */
export class HybridEngine implements Engine {
  readonly name = 'hybrid';
  readonly local: LocalEngine;
  readonly remote: BullMQEngine;
  private readonly heavy: ReadonlySet<string> | null;
  private readonly fallback: RedisFallback;
  private readonly executeLocal: boolean;

  constructor(options: HybridEngineOptions) {
    this.local = new LocalEngine({ ...options.local, engines: ['local'] });
    this.remote = options.remote;
    this.heavy = options.heavyTasks ? new Set(options.heavyTasks) : null;
    this.fallback = options.redisFallback ?? 'refuse';
    this.executeLocal = options.executeLocal ?? true;
  }

  get concurrency(): number | undefined {
    return this.executeLocal ? this.local.concurrency : undefined;
  }

  isHeavy(definition: AnyTaskDefinition): boolean {
    return this.heavy ? this.heavy.has(definition.name) : definition.route === 'heavy';
  }

  engineFor(definition: AnyTaskDefinition): string {
    if (!this.isHeavy(definition)) return this.local.name;
    if (this.remote.available) return this.remote.name;
    if (this.fallback === 'local') return this.local.name;
    throw backendUnavailable(`Redis is unavailable, and ${definition.name} runs on workers; try again shortly`);
  }

  async start(context: EngineContext): Promise<void> {
    await this.remote.start(context);
    if (this.executeLocal) await this.local.start(context);
  }

  private engineOf(record: TaskRecord): Engine {
    return record.engine === this.remote.name ? this.remote : this.local;
  }

  async enqueue(records: TaskRecord[]): Promise<void> {
    const remote = records.filter((r) => r.engine === this.remote.name);
    const local = remote.length === 0 ? records : records.filter((r) => r.engine !== this.remote.name);
    await Promise.all([remote.length > 0 && this.remote.enqueue(remote), local.length > 0 && this.local.enqueue()]);
  }

  async cancelRunning(record: TaskRecord, request: CancelRequest): Promise<boolean> {
    return this.engineOf(record).cancelRunning(record, request);
  }

  forget(record: TaskRecord): Promise<void> {
    return this.engineOf(record).forget(record);
  }

  async pausesChanged(): Promise<void> {
    await Promise.all([this.local.pausesChanged(), this.remote.pausesChanged?.()]);
  }

  onEvents(events: TaskEvent[]): void {
    this.local.onEvents(events);
    this.remote.onEvents(events);
  }

  ping(): Promise<void> {
    return this.remote.ping();
  }

  services(context: Pick<EngineContext, 'store' | 'logger'>): MaintenanceService[] {
    return this.remote.services(context);
  }

  broker(): BullMQEngine {
    return this.remote;
  }

  async info(): Promise<EngineInfo> {
    const [local, remote] = await Promise.all([this.executeLocal ? this.local.info() : { workers: [] }, this.remote.info()]);
    return { workers: [...local.workers, ...remote.workers] };
  }

  async stop(graceMs: number): Promise<void> {
    await Promise.all([this.executeLocal && this.local.stop(graceMs), this.remote.stop(graceMs)]);
  }
}
