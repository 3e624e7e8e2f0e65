/**
 * A maintenance duty: one small job run on an interval. Leader-only duties (rescuing, pruning,
 * durable consumers) run in exactly one process at a time; the others (the heartbeat) in every
 * process. Modelled on River's maintenance services and Oban's plugins.
 */
export interface MaintenanceService {
  readonly name: string;
  readonly leaderOnly: boolean;
  /** Time between two runs, measured from the end of one to the start of the next. */
  readonly intervalMs: number;
  /**
   * Each round is written to the ledger as a finished run of `taskyard.maintenance.<name>`
   * (category `maintenance`), its result the value `runOnce` returns (see rounds.ts).
   */
  readonly recorded?: boolean;
  /** How a recorded round is named in the ledger, e.g. "Prune finished runs". */
  readonly displayName?: string;
  runOnce(now: number): Promise<unknown>;
}
