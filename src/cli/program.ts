/**
 * The `taskyard` command line: a thin client of the native HTTP API, plus `serve` and `worker` for the user's tasks.
 * Exit codes: 0 success; 1 the task ended FAILURE or REVOKED; 2 usage, HTTP or connection errors.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CliError, EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, TaskyardClient, type ParameterInfo, type TaskJson } from './client.js';
import { json, paint, progressLine, scheduleTable, statsSummary, taskSummary, taskTable, TERMINAL_STATES, timelineLine, typesSummary, type Style } from './format.js';
import { buildParams } from './params.js';
import type { ServeCommandOptions } from './serve.js';
import type { WorkerCommandOptions } from './worker.js';

const DEFAULT_URL = 'http://127.0.0.1:8000';
const POLL_INTERVAL_MS = 250;

interface GlobalOptions {
  url: string;
  apiKey?: string;
  json?: boolean;
}

/** What a command needs: the client, output streams and styles. */
interface Context {
  client: TaskyardClient;
  json: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
  outStyle: Style;
  errStyle: Style;
}

const colorFor = (stream: NodeJS.WriteStream): Style => ({ color: Boolean(stream.isTTY) && !process.env.NO_COLOR });

function contextOf(command: Command): Context {
  const g = command.optsWithGlobals<GlobalOptions>();
  return {
    client: new TaskyardClient(g.url, g.apiKey || undefined),
    json: Boolean(g.json),
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    outStyle: colorFor(process.stdout),
    errStyle: colorFor(process.stderr),
  };
}

const intOption =
  (name: string, min: number, max: number) =>
  (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be an integer`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };

const secondsOption = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds >= 0');
  return n;
};

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** 404s from commands that take an id read better as "Task <id> not found". */
async function withTask<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof CliError && error.status === 404) throw new CliError(`Task ${id} not found`, EXIT_USAGE, 404);
    throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Live progress on stderr. On a terminal, one line redrawn with `\r`; elsewhere (logs, pipes),
 * one line each time state, percent or message changes.
 */
class ProgressView {
  private last = '';
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(task: TaskJson): void {
    const line = progressLine(task);
    if (line === this.last) return;
    this.last = line;
    if (this.stream.isTTY) {
      const width = this.stream.columns ? this.stream.columns - 1 : 120;
      this.stream.write(`\r${line.slice(0, width)}\x1b[K`);
      this.drawn = true;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  end(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

/** Polls the task until it is terminal, drawing progress; then reports it and returns the exit code. */
async function waitAndReport(ctx: Context, first: TaskJson): Promise<number> {
  const view = new ProgressView(process.stderr);
  const onSigint = () => {
    view.end();
    ctx.err(`Stopped waiting; task ${first.task_id} keeps running (taskyard cancel ${first.task_id})`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  let task = first;
  try {
    for (;;) {
      view.update(task);
      if (TERMINAL_STATES.has(task.state)) break;
      await sleep(POLL_INTERVAL_MS);
      task = await ctx.client.get(task.task_id);
    }
  } finally {
    view.end();
    process.removeListener('SIGINT', onSigint);
  }
  if (ctx.json) ctx.out(json(task));
  if (task.state === 'SUCCESS') {
    if (!ctx.json) ctx.out(json(task.result));
    return EXIT_OK;
  }
  if (task.state === 'FAILURE') {
    ctx.err(paint(ctx.errStyle, 'red', `Task ${task.task_id} failed: ${task.error ?? 'unknown error'}`));
  } else {
    ctx.err(paint(ctx.errStyle, 'magenta', `Task ${task.task_id} was revoked${task.revoke_reason ? `: ${task.revoke_reason}` : ''}`));
  }
  return EXIT_TASK_FAILED;
}

const TIMELINE_PAGE = 500;

/**
 * Prints the timeline page by page. With `follow`, polls for new events until the task is
 * terminal: the state is read before the last drain, so no event of a finished task is missed.
 * `--json` prints one event per line (NDJSON), which suits following.
 */
async function printTimeline(ctx: Context, id: string, follow: boolean): Promise<void> {
  let after: number | undefined;
  for (;;) {
    const finished = !follow || TERMINAL_STATES.has((await ctx.client.get(id)).state);
    for (;;) {
      const page = await ctx.client.timeline(id, after, TIMELINE_PAGE);
      for (const event of page.events) ctx.out(ctx.json ? JSON.stringify(event) : timelineLine(event, ctx.outStyle));
      after = page.next_after ?? page.events.at(-1)?.seq ?? after;
      if (page.next_after === null) break;
    }
    if (finished) return;
    await sleep(POLL_INTERVAL_MS);
  }
}

/** The parameter schema of one task type, used to keep string-typed values as strings. */
async function schemaOf(client: TaskyardClient, taskType: string): Promise<Record<string, ParameterInfo> | undefined> {
  const types = await client.types();
  for (const category of types.categories) {
    const found = category.tasks.find((t) => t.name === taskType);
    if (found) return found.parameters;
  }
  return undefined; // the server names the unknown type in its 400
}

export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('taskyard');
  program
    .description('Launch, follow and control Taskyard background tasks')
    .addOption(new Option('--url <url>', 'Taskyard server URL').env('TASKYARD_URL').default(DEFAULT_URL))
    .addOption(new Option('--api-key <key>', 'API key, sent as Authorization: Bearer').env('TASKYARD_API_KEY'))
    .option('--json', 'machine-readable JSON output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('serve')
    .description('Serve your task definitions over the native HTTP API (SQLite ledger, local engine, this process)')
    .requiredOption('--tasks <module>', 'ES module exporting your task definitions (default export array, or named exports); .ts needs tsx')
    .option('--port <port>', 'port to listen on (env PORT, default 8000)', intOption('--port', 0, 65535))
    .option('--host <host>', 'address to bind (env HOST, default 127.0.0.1)')
    .option('--data-dir <dir>', 'directory of the SQLite ledger (env TASKYARD_DATA_DIR, default ./data; DATABASE_URL for PostgreSQL)')
    .action(async (options: ServeCommandOptions) => {
      // Loaded here, not at the top: the server stack is not needed by (or slow for) other commands.
      const { serveTasks } = await import('./serve.js');
      await serveTasks(options);
    });

  program
    .command('worker')
    .description('Run your task definitions as a BullMQ worker (REDIS_URL, and DATABASE_URL for the shared ledger)')
    .requiredOption('--tasks <module>', 'ES module exporting your task definitions (default export array, or named exports); .ts needs tsx')
    .option('--concurrency <n>', 'most tasks at once in this worker (env TASKYARD_CONCURRENCY, default 20)', intOption('--concurrency', 1, 10_000))
    .option('--queue <name>', 'BullMQ queue name (env TASKYARD_QUEUE, default taskyard)')
    .action(async (options: WorkerCommandOptions) => {
      const { runWorker } = await import('./worker.js');
      await runWorker(options);
    });

  program
    .command('launch')
    .description('Launch a task; with --wait, follow it to the end')
    .argument('<task_type>', 'task name, e.g. sii.sync_documents')
    .option('-p, --param <key=value>', 'a parameter (repeatable); JSON values are parsed unless the schema says string', collect, [])
    .option('--params-json <json>', 'all parameters as a JSON object (--param values override it)')
    .option('--countdown <seconds>', 'run no sooner than this many seconds from now', secondsOption)
    .option('--eta <time>', 'run no sooner than this ISO 8601 time')
    .option('--priority <n>', 'priority (-1000..1000, higher runs first)', intOption('--priority', -1000, 1000))
    .option('-w, --wait', 'show live progress and wait for the result (exit 1 if it fails)')
    .action(async (taskType: string, options: { param: string[]; paramsJson?: string; countdown?: number; eta?: string; priority?: number; wait?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const schema = options.param.length > 0 ? await schemaOf(ctx.client, taskType) : undefined;
      const params = buildParams(options.param, options.paramsJson, schema);
      const task = await ctx.client.launch({ task_type: taskType, params, countdown: options.countdown, eta: options.eta, priority: options.priority });
      if (!options.wait) {
        ctx.out(ctx.json ? json(task) : task.task_id);
        return;
      }
      ctx.err(`Launched ${task.name} ${task.task_id}`);
      setExitCode(await waitAndReport(ctx, task));
    });

  program
    .command('status')
    .description('Show one task')
    .argument('<task_id>')
    .action(async (id: string, _options: unknown, command: Command) => {
      const ctx = contextOf(command);
      const task = await withTask(id, () => ctx.client.get(id));
      ctx.out(ctx.json ? json(task) : taskSummary(task, ctx.outStyle));
    });

  program
    .command('logs')
    .description("Print a task's timeline: transitions, progress and log lines, oldest first")
    .argument('<task_id>')
    .option('-f, --follow', 'keep printing new events until the task finishes')
    .action(async (id: string, options: { follow?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      await withTask(id, () => printTimeline(ctx, id, Boolean(options.follow)));
    });

  program
    .command('ls')
    .alias('list')
    .description('List tasks, newest first')
    .option('--state <states>', 'filter by state (comma-separated, e.g. STARTED,PENDING)')
    .option('--type <category>', 'filter by category (e.g. sii, reconciliation)')
    .option('--name <name>', 'filter by task name (comma-separated)')
    .option('--company <id>', 'filter by company (tenant) id')
    .option('--limit <n>', 'rows per request (1-500)', intOption('--limit', 1, 500), 50)
    .option('--all', 'follow the cursor through every page')
    .action(async (options: { state?: string; type?: string; name?: string; company?: string; limit: number; all?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const query = { state: options.state?.toUpperCase(), task_type: options.type, name: options.name, company_id: options.company, limit: options.limit };
      const tasks: TaskJson[] = [];
      let cursor: string | undefined;
      let next: string | null = null;
      do {
        const page = await ctx.client.list({ ...query, cursor });
        tasks.push(...page.tasks);
        next = page.next_cursor;
        cursor = next ?? undefined;
      } while (options.all && next);
      if (ctx.json) {
        ctx.out(json({ tasks, count: tasks.length, next_cursor: next }));
        return;
      }
      if (tasks.length === 0) {
        ctx.out('No tasks.');
        return;
      }
      ctx.out(taskTable(tasks, ctx.outStyle));
      if (next) ctx.err(`${tasks.length} shown; more with --all or a larger --limit`);
    });

  program
    .command('cancel')
    .description('Cancel a task (soft: it stops at its next check; --hard: at once)')
    .argument('<task_id>')
    .option('--hard', 'stop it at once (kills isolated tasks)')
    .option('--reason <text>', 'why, kept on the task')
    .action(async (id: string, options: { hard?: boolean; reason?: string }, command: Command) => {
      const ctx = contextOf(command);
      const task = await withTask(id, () => ctx.client.stop(id, Boolean(options.hard), options.reason ?? null));
      if (ctx.json) ctx.out(json(task));
      else if (task.state === 'REVOKED') ctx.out(`Task ${task.task_id} revoked`);
      else ctx.out(`Cancel requested for task ${task.task_id} (${task.state}); it stops at its next check`);
    });

  program
    .command('retry')
    .description('Retry a FAILURE or REVOKED task')
    .argument('<task_id>')
    .option('-w, --wait', 'show live progress and wait for the result')
    .action(async (id: string, options: { wait?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const task = await withTask(id, () => ctx.client.retry(id));
      if (options.wait) {
        ctx.err(`Retrying ${task.name} ${task.task_id}`);
        setExitCode(await waitAndReport(ctx, task));
        return;
      }
      ctx.out(ctx.json ? json(task) : `Task ${task.task_id} queued for retry (${task.state})`);
    });

  program
    .command('stats')
    .description('Counts by state, queue depth and workers')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(command);
      const stats = await ctx.client.stats();
      ctx.out(ctx.json ? json(stats) : statsSummary(stats, ctx.outStyle));
    });

  program
    .command('types')
    .description('Task types by category, with their parameters')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(command);
      const types = await ctx.client.types();
      ctx.out(ctx.json ? json(types) : typesSummary(types, ctx.outStyle));
    });

  const schedules = program.command('schedules').description('List schedules with their next run; enable or disable one (admin)');
  schedules
    .command('list', { isDefault: true })
    .description('List schedules: when each fires, its next run and its last run')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(command);
      const { schedules: list } = await ctx.client.schedules();
      if (ctx.json) ctx.out(json(list));
      else ctx.out(list.length === 0 ? 'No schedules.' : scheduleTable(list, ctx.outStyle));
    });
  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    schedules
      .command(verb)
      .description(`${verb === 'enable' ? 'Enable' : 'Disable'} a schedule (admin; code schedules too)`)
      .argument('<name>')
      .action(async (name: string, _options: unknown, command: Command) => {
        const ctx = contextOf(command);
        const schedule = await ctx.client.setScheduleEnabled(name, enabled);
        ctx.out(ctx.json ? json(schedule) : `Schedule ${schedule.name} ${verb}d${enabled && schedule.next_runs[0] ? `; next run ${schedule.next_runs[0]}` : ''}`);
      });
  }

  return program;
}

/** Runs the CLI and returns the exit code (the caller sets process.exitCode). */
export async function runCli(argv: readonly string[]): Promise<number> {
  let exitCode = EXIT_OK;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv as string[]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other parse error is a usage error.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof CliError) {
      process.stderr.write(`taskyard: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`taskyard: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT_USAGE;
  }
}
