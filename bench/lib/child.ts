/**
 * Bench processes: every server under test, every load generator and every measured section runs
 * in a child process of its own, so no figure includes the bench's own event loop or heap. A
 * child speaks in lines on stdout, `<kind> <json>`; anything else it prints goes to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface BenchChild {
  child: ChildProcess;
  pid: number;
  /** Resolves with the JSON of the first line of this kind (rejects if the child exits first). */
  next<T>(kind: string): Promise<T>;
  /** Calls `fn` for every line of this kind. */
  each<T>(kind: string, fn: (value: T) => void): void;
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * `node --import tsx <path> ...args` from the repository root, stdout piped, stderr inherited.
 * BENCH_CPU_PROF=<dir> profiles every bench child (servers, sections, workers).
 */
export function spawnTsx(path: string, args: string[] = [], env: Record<string, string> = {}): ChildProcess {
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  return spawn(process.execPath, [...profile, '--import', 'tsx', path, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Calls `fn` with each whole line the child prints on stdout. */
export function eachLine(child: ChildProcess, fn: (line: string) => void): void {
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let end: number;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      fn(line);
    }
  });
}

/** Starts `node --import tsx <file> ...args` from the repository root. */
export function startChild(file: string, args: string[] = [], env: Record<string, string> = {}): BenchChild {
  const child = spawnTsx(fileURLToPath(new URL(`../${file}`, import.meta.url)), args, env);
  const listeners = new Map<string, Array<(value: unknown) => void>>();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  eachLine(child, (line) => {
    const space = line.indexOf(' ');
    const kind = space < 0 ? line : line.slice(0, space);
    const fns = listeners.get(kind);
    if (!fns) {
      process.stderr.write(`${line}\n`);
      return;
    }
    const value = space < 0 ? null : JSON.parse(line.slice(space + 1));
    for (const fn of fns) fn(value);
  });
  const each = <T>(kind: string, fn: (value: T) => void) => {
    listeners.set(kind, [...(listeners.get(kind) ?? []), fn as (value: unknown) => void]);
  };
  return {
    child,
    pid: child.pid!,
    exited,
    each,
    next<T>(kind: string) {
      return new Promise<T>((resolve, reject) => {
        let settled = false;
        each<T>(kind, (value) => {
          if (!settled) resolve(value);
          settled = true;
        });
        void exited.then((code) => {
          if (!settled) reject(new Error(`${file} exited (${code}) before it printed "${kind}"`));
          settled = true;
        });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs one child to completion and returns its `result` line. */
export async function runChild<T>(file: string, args: string[] = [], env: Record<string, string> = {}): Promise<T> {
  const child = startChild(file, args, env);
  const result = child.next<T>('result');
  const code = await child.exited;
  if (code !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${code}`);
  return result;
}

export interface ProcessMemory {
  /** Resident set now, MB. */
  rssMb: number;
  /** The process's peak resident set so far (VmHWM), MB. */
  peakMb: number;
}

/** The kernel's view of a process's memory (Linux /proc; null where there is none). */
export function processMemory(pid: number): ProcessMemory | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Polls a process's RSS (every `intervalMs`); stop() returns the peak seen, in MB, or the kernel's VmHWM if higher. */
export function watchMemory(pid: number, intervalMs = 100): { stop(): number } {
  let peak = 0;
  const sample = () => {
    const m = processMemory(pid);
    if (m) peak = Math.max(peak, m.rssMb, Number.isFinite(m.peakMb) ? m.peakMb : 0);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    stop() {
      sample();
      clearInterval(timer);
      return peak;
    },
  };
}
