import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'undici';
import { PUBLICATION } from './benchDatabase.js';
import { RssSampler } from './rssSampler.js';

const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));
const DOCKERFILE = fileURLToPath(new URL('../../../Dockerfile', import.meta.url));

/** The image's `NODE_OPTIONS` (its heap limits), so the daemon runs here as the container runs it. */
export async function imageNodeFlags(): Promise<string[]> {
  const options = (await readFile(DOCKERFILE, 'utf8')).match(/^ENV NODE_OPTIONS="([^"]*)"/m);
  if (!options?.[1]) throw new Error(`no ENV NODE_OPTIONS="…" line in ${DOCKERFILE}`);
  return words(options[1]);
}

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

export interface DaemonSettings {
  databaseUrl: string;
  slot: string;
  verboseUrl: string;
  batchSize: number;
  flushIntervalMs: number;
  requestsPerSecond: number;
  concurrency: number;
  maxPendingContacts?: number;
}

/** The unthrottled scenarios: the example config's values, but a request budget that never binds. */
export const UNTHROTTLED: Omit<DaemonSettings, 'databaseUrl' | 'slot' | 'verboseUrl'> = {
  batchSize: 500,
  flushIntervalMs: 1000,
  requestsPerSecond: 1000,
  concurrency: 2,
};

/** The list every bench contact goes to, for verbose-sync and the naive peer alike. */
export const LIST = 'Bench contacts';

export function configYaml(settings: DaemonSettings, stateDir: string): string {
  return `source:
  url: ${settings.databaseUrl}
  slot: ${settings.slot}
  publication: ${PUBLICATION}
verbose:
  url: ${settings.verboseUrl}
  api_key: as_test_key
  batch_size: ${settings.batchSize}
  flush_interval_ms: ${settings.flushIntervalMs}
  requests_per_second: ${settings.requestsPerSecond}
  concurrency: ${settings.concurrency}
state_dir: ${stateDir}
max_pending_contacts: ${settings.maxPendingContacts ?? 20_000}
http:
  host: 127.0.0.1
  port: 0
mappings:
  - table: public.contacts
    list: ${LIST}
    fields:
      phone: phone
      first_name: first_name
      last_name: last_name
      source: source
`;
}

/** Daemons started and not yet exited, for an interrupted bench to take down with it. */
const running = new Set<ChildProcess>();

/** Kills every daemon this process started that is still running. */
export function killDaemons(): void {
  for (const child of running) child.kill('SIGKILL');
}

interface LogWaiter {
  test: (line: Record<string, unknown>) => boolean;
  resolve: (line: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

/**
 * `node dist/cli.js run --config …` as its own process, as ops run it, so its memory is its own: RSS is sampled
 * from /proc while it runs.
 */
export class DaemonProcess {
  readonly rss: RssSampler;
  /** When the replication stream started (the daemon's own log time), ms since the epoch. */
  readonly streaming: Promise<number>;
  /** The /healthz, /readyz, /metrics base URL. */
  readonly ops: Promise<string>;
  /**
   * The heap still in use after each full (mark-compact) collection: the live heap, which is what the design
   * bounds. RSS also holds the garbage V8 lets accumulate before it collects (read from `--trace-gc`, which only
   * prints).
   */
  readonly fullCollections: { at: number; liveMb: number }[] = [];
  private readonly exited: Promise<number | null>;
  private readonly tail: string[] = [];
  /** Only the first lines are kept (the ones waited for come early): a long run must not grow the bench. */
  private readonly firstLines: Record<string, unknown>[] = [];
  private waiters: LogWaiter[] = [];
  private pending = '';
  private inspectorUrl: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly label: string,
  ) {
    this.rss = new RssSampler(child.pid!);
    running.add(child);
    child.stdout!.on('data', (chunk: Buffer) => this.read(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      this.inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(text)?.[1];
      this.remember(text.trimEnd());
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        running.delete(child);
        const error = new Error(`the ${label} daemon exited (${String(code)}):\n${this.tail.join('\n')}`);
        for (const waiter of this.waiters) waiter.reject(error);
        this.waiters = [];
        resolve(code);
      }),
    );
    this.ops = this.waitForLog((line) => line.msg === 'verbose-sync starting').then((line) =>
      String(line.ops),
    );
    this.streaming = this.waitForLog((line) => line.msg === 'replication stream started').then((line) =>
      Date.parse(String(line.time)),
    );
  }

  static async start(
    workDir: string,
    label: string,
    settings: DaemonSettings,
    args: string[] = [],
    options: { inspect?: boolean } = {},
  ): Promise<DaemonProcess> {
    const dir = join(workDir, label);
    await mkdir(dir, { recursive: true });
    const config = join(dir, 'sync.yaml');
    await writeFile(config, configYaml(settings, join(dir, 'state')));
    // The inspector only listens (on a free loopback port) until `collectGarbage()` asks it something.
    const nodeFlags = [
      ...(await imageNodeFlags()),
      '--trace-gc',
      ...words(process.env.BENCH_DAEMON_FLAGS ?? ''),
      ...(options.inspect ? ['--inspect=127.0.0.1:0'] : []),
    ];
    const child = spawn(process.execPath, [...nodeFlags, CLI, 'run', '--config', config, ...args], {
      env: { PATH: process.env.PATH, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new DaemonProcess(child, label);
    await Promise.all([daemon.ops, daemon.streaming]);
    return daemon;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The largest live heap seen after a full collection, in MB (0 before the first one). */
  get maxLiveMb(): number {
    return this.fullCollections.reduce((max, collection) => Math.max(max, collection.liveMb), 0);
  }

  /** Resolves with the first log line that passes `test` (rejects if the daemon exits first). */
  waitForLog(test: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const found = this.firstLines.find(test);
    if (found) return Promise.resolve(found);
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return Promise.reject(new Error(`the ${this.label} daemon has exited:\n${this.tail.join('\n')}`));
    }
    return new Promise((resolve, reject) => this.waiters.push({ test, resolve, reject }));
  }

  /**
   * Started with `inspect`: has the daemon collect all its garbage (through the inspector protocol) and returns
   * the heap still in use, in MB: its live heap, exactly, at this moment.
   */
  async collectGarbage(): Promise<number> {
    if (!this.inspectorUrl) throw new Error(`the ${this.label} daemon was not started with its inspector`);
    const socket = new WebSocket(this.inspectorUrl);
    const replies = new Map<number, (result: unknown) => void>();
    socket.addEventListener('message', (event) => {
      const reply = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (reply.id !== undefined) replies.get(reply.id)?.(reply.result);
    });
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve());
      socket.addEventListener('error', () => reject(new Error('could not reach the daemon inspector')));
    });
    const call = (id: number, method: string) =>
      new Promise<unknown>((resolve) => {
        replies.set(id, resolve);
        socket.send(JSON.stringify({ id, method }));
      });
    try {
      await call(1, 'HeapProfiler.collectGarbage');
      const usage = (await call(2, 'Runtime.getHeapUsage')) as { usedSize: number };
      return usage.usedSize / 2 ** 20;
    } finally {
      socket.close();
    }
  }

  /** The daemon's Prometheus metrics, by series (labels included in the name). */
  async metrics(): Promise<Map<string, number>> {
    const response = await fetch(`${await this.ops}/metrics`);
    const text = await response.text();
    const series = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const at = line.lastIndexOf(' ');
      series.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
    return series;
  }

  /** SIGTERM, as ops stop it; resolves with its peak RSS in MB once it has exited. */
  async stop(): Promise<number> {
    const peak = this.rss.stop();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const code = await this.exited;
    clearTimeout(timer);
    if (code !== 0 && code !== null) {
      throw new Error(`the ${this.label} daemon exited with ${code}:\n${this.tail.join('\n')}`);
    }
    return peak;
  }

  private read(text: string): void {
    this.pending += text;
    const texts = this.pending.split('\n');
    this.pending = texts.pop() ?? '';
    for (const entry of texts) {
      this.remember(entry);
      const fullCollection = / Mark-Compact (?:\(reduce\) )?[\d.]+ \([\d.]+\) -> ([\d.]+) \(/.exec(entry);
      if (fullCollection) this.fullCollections.push({ at: Date.now(), liveMb: Number(fullCollection[1]) });
      if (!entry.startsWith('{')) continue;
      const line = JSON.parse(entry) as Record<string, unknown>;
      if (this.firstLines.length < 50) this.firstLines.push(line);
      for (const waiter of [...this.waiters]) {
        if (!waiter.test(line)) continue;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  }

  private remember(text: string): void {
    this.tail.push(text);
    if (this.tail.length > 40) this.tail.shift();
  }
}
