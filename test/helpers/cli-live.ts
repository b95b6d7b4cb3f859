/**
 * The tiergate CLI as a process a test talks to while it runs: wait for a
 * marker in its output (never a fixed sleep), send it a signal, answer its
 * prompt on a terminal. `runCli` (cli.ts) is for runs that only need their
 * result.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TSX, type CliRun } from './cli.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'src/cli/bin.ts');

export interface LiveCli {
  readonly pid: number;
  /** stdout and stderr so far */
  output(): { stdout: string; stderr: string };
  /** resolves once `pattern` has appeared on `stream` (rejects, with the output, if the process ends first) */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
  /** whether the process has ended */
  exited(): boolean;
  /** writes to the process's standard input (a terminal's, for `inTerminal`) */
  write(text: string): void;
  kill(signal: NodeJS.Signals): void;
  /** the exit code (null when killed by a signal) and the whole output */
  readonly done: Promise<CliRun & { signal: NodeJS.Signals | null }>;
}

interface LiveOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

/** Starts `tiergate ARGS` from source, as `runCli` does, without waiting for it. */
export function startCli(args: string[], options: LiveOptions = {}): LiveCli {
  const child = spawn(process.execPath, ['--import', TSX, BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return live(child, options.timeoutMs);
}

/**
 * Runs `tiergate ARGS` on a terminal of its own (util-linux `script`): its
 * standard input and output are a TTY, so it asks before changing anything.
 * What it prints (the terminal's output, stdout and stderr together) is on
 * `stdout`; its exit code is `script`'s.
 */
export function inTerminal(args: string[], options: LiveOptions = {}): LiveCli {
  const command = [process.execPath, '--import', TSX, BIN, ...args].map(shellQuote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', TERM: 'dumb', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return live(child, options.timeoutMs);
}

function live(child: ChildProcess, timeoutMs = 120_000): LiveCli {
  let stdout = '';
  let stderr = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const notify = () => waiters.splice(0).forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => ((stdout += d.toString()), notify()));
  child.stderr!.on('data', (d: Buffer) => ((stderr += d.toString()), notify()));
  child.stdin!.on('error', () => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<CliRun & { signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ended = true;
      child.stdin!.destroy();
      notify();
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    pid: child.pid!,
    output: () => ({ stdout, stderr }),
    exited: () => ended,
    waitFor(pattern, stream = 'stderr') {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stream === 'stdout' ? stdout : stderr)) return resolve();
          if (ended) return reject(new Error(`the process ended before ${pattern} appeared on ${stream}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          waiters.push(check);
        };
        check();
      });
    },
    write: (text) => void child.stdin!.write(text),
    kill: (signal) => void child.kill(signal),
    done,
  };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
