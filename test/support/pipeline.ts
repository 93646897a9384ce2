import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Daemon } from '../../src/daemon.js';
import { Metrics } from '../../src/ops/metrics.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { testConfigYaml } from './configYaml.js';
import { loggerInto } from './logLines.js';

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
  const yaml = (overrides = '') =>
    testConfigYaml({ db, verboseUrl: simulator.url, stateDir, mappings }, { extra: overrides });
  const config = (overrides = '') => parseConfig(yaml(overrides), 'test.yaml', {}).config;
  const log = loggerInto(logs);
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

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/** Polls until `check` returns a truthy value (which it returns), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 20_000,
  what = 'condition',
  intervalMs = 50,
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as Truthy<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
