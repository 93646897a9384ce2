import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Another build of the CLI than this checkout's dist/cli.js. */
  cli?: string;
  /** Runs it as another user (root ignores file permissions, a user does not). */
  user?: { uid?: number; gid?: number };
}

export interface CliProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** What it wrote so far to stdout, to stderr, and to both as it came. */
  stdout(): string;
  stderr(): string;
  output(): string;
  /** Resolves once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process has ended and all it wrote was read; rejects if it could not start. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the built CLI (`node dist/cli.js …`) as a user would, collecting what it prints. */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [options.cli ?? CLI, ...args], {
    ...options.user,
    cwd: options.cwd,
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    closed: new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal }));
    }),
  };
}

/** Runs the built CLI to completion; SIGKILLed after `timeoutMs`. */
export async function runCli(
  args: string[],
  options: CliOptions & { timeoutMs?: number } = {},
): Promise<CliResult> {
  const run = startCli(args, options);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  try {
    const { code, signal } = await run.closed;
    return { code, signal, stdout: run.stdout(), stderr: run.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** Writes `yaml` to a file of its own in `dir` and runs `verbose-sync <command> --config <that file>`. */
export async function runCliOnConfig(
  dir: string,
  command: string,
  yaml: string,
  options: CliOptions & { timeoutMs?: number } = {},
): Promise<CliResult> {
  const file = join(dir, `sync-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  return runCli([command, '--config', file], options);
}
