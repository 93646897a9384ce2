import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger, type Logger } from '../../src/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';

export interface Pipeline {
  db: TestDatabase;
  simulator: Simulator;
  stateDir: string;
  /** Log lines the daemons wrote, parsed. */
  logs: Record<string, unknown>[];
  config(overrides?: string): Config;
  yaml(overrides?: string): string;
  /** Starts an in-process daemon on this database and simulator. */
  start(options?: { overrides?: string; fullResync?: boolean; dryRun?: boolean }): Promise<Daemon>;
  close(): Promise<void>;
}

/**
 * A CRM database, a Verbose simulator and a state directory for one test file. `mappings` is the YAML
 * `mappings:` section; the rest of the config is fast-moving defaults suitable for tests.
 */
export async function createPipeline(label: string, mappings: string, schema: string): Promise<Pipeline> {
  const db = await createTestDatabase(label);
  await db.query(schema);
  const simulator = await startSimulator();
  const stateDir = await mkdtemp(join(tmpdir(), `verbose-sync-${label}-`));
  const logs: Record<string, unknown>[] = [];
  const daemons: Daemon[] = [];
  const yaml = (overrides = '') => `
source:
  url: ${db.url}
  slot: ${db.name}
  publication: ${db.name}
  status_interval_ms: 200
  heartbeat_interval_ms: 500
verbose:
  url: ${simulator.url}
  api_key: as_test_key
  batch_size: 100
  flush_interval_ms: 50
  requests_per_second: 200
  concurrency: 4
state_dir: ${stateDir}
http:
  port: 0
resync:
  chunk_size: 250
${overrides}
${mappings}`;
  const config = (overrides = '') => parseConfig(yaml(overrides), 'test.yaml', {}).config;
  const log: Logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    }),
  });
  return {
    db,
    simulator,
    stateDir,
    logs,
    config,
    yaml,
    async start(options = {}) {
      const daemon = new Daemon(config(options.overrides), {
        fullResync: options.fullResync ?? false,
        dryRun: options.dryRun ?? false,
        log,
        metrics: new Metrics({ defaults: false }),
      });
      daemons.push(daemon);
      await daemon.start();
      return daemon;
    },
    async close() {
      for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
      await simulator.close();
      await db.drop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a truthy value (which it returns), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
