/**
 * Run slots of a worker that prefetches. BullMQ hands over up to `concurrency + prefetch` jobs;
 * each is started in the ledger as soon as it arrives (with the others that arrived meanwhile, one
 * commit), then waits here for one of `concurrency` slots. The ledger's start, a commit round trip,
 * so overlaps running work instead of holding a slot. A waiting run can be withdrawn (cancelled,
 * or the worker is stopping): it is told why, and never takes a slot.
 */
export type SlotAnswer<Why> = { granted: true } | { granted: false; why: Why };

export class RunSlots<Why> {
  private free: number;
  private readonly line = new Map<string, (answer: SlotAnswer<Why>) => void>();

  constructor(size: number) {
    this.free = size;
  }

  /** Waiting runs, in arrival order. */
  get waiting(): string[] {
    return [...this.line.keys()];
  }

  /** Resolves once the run holds a slot, or when it is withdrawn first. */
  take(id: string): Promise<SlotAnswer<Why>> {
    if (this.free > 0 && this.line.size === 0) {
      this.free--;
      return Promise.resolve({ granted: true });
    }
    return new Promise((resolve) => this.line.set(id, resolve));
  }

  /** A run's slot is free again: the longest-waiting run takes it. */
  release(): void {
    const next = this.line.entries().next();
    if (next.done) {
      this.free++;
      return;
    }
    const [id, wake] = next.value;
    this.line.delete(id);
    wake({ granted: true });
  }

  /** Takes a waiting run out of the line; false if it is not waiting (running, or unknown). */
  withdraw(id: string, why: Why): boolean {
    const wake = this.line.get(id);
    if (!wake) return false;
    this.line.delete(id);
    wake({ granted: false, why });
    return true;
  }
}
