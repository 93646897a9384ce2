import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCli } from './cli.js';

export interface DaemonProcess {
  readonly child: ChildProcess;
  /** Parsed JSON log lines from stdout, in order. */
  readonly logs: Record<string, unknown>[];
  /** Everything written to stdout and stderr, raw (for redaction checks). */
  output(): string;
  /** Resolves with the first log line whose `msg` matches. */
  waitForLog(
    match: RegExp | ((line: Record<string, unknown>) => boolean),
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Runs the built daemon (`node dist/cli.js run --config FILE …`) as its own process, the way ops run it, so
 * tests can SIGKILL or SIGTERM it. `yaml` is written to `dir/sync.yaml`.
 */
export async function spawnDaemon(
  dir: string,
  yaml: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<DaemonProcess> {
  const config = join(dir, 'sync.yaml');
  await writeFile(config, yaml);
  const cli = startCli(['run', '--config', config, ...args], { env: { LOG_LEVEL: 'debug', ...env } });
  const { child, exited } = cli;
  const logs: Record<string, unknown>[] = [];
  const waiters: {
    test: (line: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }[] = [];
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.test(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  return {
    child,
    logs,
    exited,
    output: cli.output,
    kill: (signal) => child.kill(signal),
    waitForLog(match, timeoutMs = 30_000) {
      const test =
        typeof match === 'function' ? match : (line: Record<string, unknown>) => match.test(String(line.msg));
      const seen = logs.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no log line matching ${String(match)} within ${timeoutMs} ms:\n${cli.output().slice(-3000)}`,
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          test,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        exited.then(() => {
          clearTimeout(timer);
          reject(
            new Error(`the daemon exited before logging ${String(match)}:\n${cli.output().slice(-3000)}`),
          );
        });
      });
    },
  };
}
