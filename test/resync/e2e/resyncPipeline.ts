import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { Daemon, type DaemonOptions } from '../../../src/daemon.js';
import type { Row } from '../../../src/domain.js';
import { parseLsn } from '../../../src/lsn.js';
import { Mapper } from '../../../src/mapping/mapper.js';
import { Metrics } from '../../../src/ops/metrics.js';
import { type Simulator, startSimulator } from '../../../src/simulator/simulator.js';
import { createTestDatabase, type TestDatabase } from '../../harness/database.js';
import { testConfigYaml } from '../../support/configYaml.js';
import { type DaemonProcess, spawnDaemon } from '../../support/daemonProcess.js';
import { loggerInto } from '../../support/logLines.js';
import { eventually } from '../../support/pipeline.js';

/** The knobs a resync test turns; everything else is the fast-moving test default. */
export interface ResyncSettings {
  chunkSize: number;
  batchSize: number;
  requestsPerSecond: number;
  concurrency?: number;
  flushIntervalMs?: number;
  schedule?: string;
}

export interface RunningDaemon {
  daemon: Daemon;
  metrics: Metrics;
  /** This daemon's log lines, parsed. */
  logs: Record<string, unknown>[];
}

export interface ResyncPipeline {
  db: TestDatabase;
  simulator: Simulator;
  stateDir: string;
  mapper: Mapper;
  yaml(settings: ResyncSettings): string;
  /** An in-process daemon; `progressIntervalMs` is how often the resync logs its progress. */
  start(
    settings: ResyncSettings,
    options?: {
      fullResync?: boolean;
      progressIntervalMs?: number;
      /** `--dry-run`, with where the requests it would send go. */
      dryRun?: DaemonOptions['printRequest'];
    },
  ): Promise<RunningDaemon>;
  /** The built daemon as its own process (`node dist/cli.js run`), for SIGKILL. */
  spawn(settings: ResyncSettings, args?: string[]): Promise<DaemonProcess>;
  /** Resolves once every change committed so far was delivered and acknowledged. */
  caughtUp(timeoutMs?: number): Promise<void>;
  /** What Verbose should hold for each current row of `table`, by phone (the project's own mapping). */
  expectedContacts(table: string, keyColumns: string[]): Promise<Map<string, Record<string, string>>>;
  /** The phones whose contact in the simulator differs from `expected`, with both sides, for the failure message. */
  mismatches(
    expected: Map<string, Record<string, string>>,
  ): { phone: string; expected: unknown; got: unknown }[];
  close(): Promise<void>;
}

/**
 * A CRM database, a Verbose simulator and a state directory for one resync test file, with daemons that
 * can be tuned per test (chunk size, batch size, rate budget), in process or as a child process.
 */
export async function createResyncPipeline(
  label: string,
  mappings: string,
  schema: string,
  /** A database on a server of the test's own (dropped with the pipeline); a new one on the shared server by default. */
  database?: TestDatabase,
): Promise<ResyncPipeline> {
  const db = database ?? (await createTestDatabase(label));
  await db.query(schema);
  const simulator = await startSimulator();
  const stateDir = await mkdtemp(join(tmpdir(), `verbose-sync-${label}-`));
  const configDir = await mkdtemp(join(tmpdir(), `verbose-sync-${label}-config-`));
  const daemons: Daemon[] = [];
  const processes: DaemonProcess[] = [];

  const yaml = (settings: ResyncSettings) =>
    testConfigYaml(
      { db, verboseUrl: simulator.url, stateDir, mappings },
      { heartbeatIntervalMs: 300, ...settings },
    );
  const config = (s: ResyncSettings): Config => parseConfig(yaml(s), 'test.yaml', {}).config;
  const mapper = Mapper.fromConfig(config({ chunkSize: 1, batchSize: 1, requestsPerSecond: 1 }));

  return {
    db,
    simulator,
    stateDir,
    mapper,
    yaml,
    async start(settings, options = {}) {
      const logs: Record<string, unknown>[] = [];
      const log = loggerInto(logs);
      const metrics = new Metrics({ defaults: false });
      const daemon = new Daemon(config(settings), {
        fullResync: options.fullResync ?? false,
        dryRun: options.dryRun !== undefined,
        printRequest: options.dryRun,
        log,
        metrics,
        resyncProgressIntervalMs: options.progressIntervalMs,
      });
      daemons.push(daemon);
      await daemon.start();
      return { daemon, metrics, logs };
    },
    async spawn(settings, args = []) {
      const child = await spawnDaemon(configDir, yaml(settings), args);
      processes.push(child);
      return child;
    },
    async caughtUp(timeoutMs = 30_000) {
      // The insert position: with synchronous_commit off, recent commits may not be written out yet.
      const { rows } = await db.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
      const target = parseLsn(rows[0]!.lsn);
      await eventually(
        async () => {
          const slot = await db.query<{ confirmed: string | null }>(
            `SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`,
            [db.name],
          );
          const confirmed = slot.rows[0]?.confirmed;
          return confirmed ? parseLsn(confirmed) >= target : false;
        },
        timeoutMs,
        'the daemon to acknowledge every change committed so far',
      );
    },
    async expectedContacts(table, keyColumns) {
      const { rows } = await db.query<Row>(`SELECT * FROM ${table}`);
      const expected = new Map<string, Record<string, string>>();
      for (const row of rows) {
        const key: Row = {};
        for (const column of keyColumns) key[column] = row[column] ?? null;
        for (const outcome of mapper.map({ table, op: 'read', row, key, commitLsn: 0n })) {
          if (outcome.kind !== 'contact') continue;
          const { phone, fields } = outcome.contact;
          expected.set(phone, { ...(fields as Record<string, string>) });
        }
      }
      return expected;
    },
    mismatches(expected) {
      const found: { phone: string; expected: unknown; got: unknown }[] = [];
      for (const [phone, fields] of expected) {
        const stored = simulator.store.contact(phone);
        const same =
          stored !== undefined &&
          Object.entries(fields).every(([name, value]) => stored[name as keyof typeof stored] === value);
        if (!same) found.push({ phone, expected: fields, got: stored });
      }
      return found;
    },
    async close() {
      for (const child of processes.reverse()) {
        if (child.child.exitCode === null && child.child.signalCode === null) child.kill('SIGKILL');
        await child.exited;
      }
      for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {});
      await simulator.close();
      await db.drop();
      await rm(stateDir, { recursive: true, force: true });
      await rm(configDir, { recursive: true, force: true });
    },
  };
}
