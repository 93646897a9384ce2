import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/simulator/simulator.js';
import { type ConfigSettings, testConfigYaml } from '../support/configYaml.js';
import { type DaemonProcess, spawnDaemon } from '../support/daemonProcess.js';
import { eventually } from '../support/pipeline.js';
import type { CrmWorkload } from './crmWorkload.js';

/** Delivery and source settings of one daemon run; everything not given is fast-moving and test-sized. */
export interface RunSettings
  extends Pick<
    ConfigSettings,
    | 'apiKey'
    | 'batchSize'
    | 'flushIntervalMs'
    | 'requestsPerSecond'
    | 'concurrency'
    | 'requestTimeoutMs'
    | 'statusIntervalMs'
    | 'heartbeatIntervalMs'
    | 'shutdownTimeoutMs'
  > {
  stateDir?: string;
}

export interface SlotPosition {
  /** The slot's confirmed_flush_lsn; null before anything was confirmed. */
  confirmed: bigint | null;
  activePid: number | null;
}

/**
 * One fault scenario's world: a CRM database (on the shared test server, or on a server of the test's own),
 * a Verbose simulator in this process, a work directory holding the state directory, and the daemons it
 * spawned as child processes (SIGKILLed on close if still running).
 */
export interface FaultRig {
  readonly database: string;
  readonly url: string;
  /** A connection to the CRM database, for arranging rows; `reconnect()` replaces it after a server restart. */
  readonly sql: pg.Client;
  reconnect(): Promise<void>;
  readonly simulator: Simulator;
  readonly dir: string;
  readonly stateDir: string;
  yaml(settings?: RunSettings): string;
  spawn(settings?: RunSettings, args?: string[]): Promise<DaemonProcess>;
  /** The replication slot's state as the server sees it now. */
  slot(): Promise<SlotPosition | undefined>;
  /** The position in `state_dir/checkpoint.json`, or undefined when there is none. */
  savedCheckpoint(stateDir?: string): Promise<bigint | undefined>;
  /** Prints the end of what each daemon wrote (debug lines left out), for a failing test. */
  printDaemonOutput(): void;
  close(): Promise<void>;
}

export interface FaultRigOptions {
  label: string;
  schema: string;
  /** The YAML `mappings:` section. */
  mappings: string;
  /** The PostgreSQL server (a URL to its `postgres` database); the run's shared server by default. */
  serverUrl?: string;
  simulator?: SimulatorOptions;
}

export async function createFaultRig(options: FaultRigOptions): Promise<FaultRig> {
  const serverUrl = options.serverUrl ?? inject('postgresUrl');
  const database = `${options.label}_${randomBytes(4).toString('hex')}`;
  await withAdmin(serverUrl, (admin) => admin.query(`CREATE DATABASE "${database}"`));
  const address = new URL(serverUrl);
  address.pathname = `/${database}`;
  const url = address.toString();
  const connect = async (): Promise<pg.Client> => {
    const client = new pg.Client(url);
    // A server restart in a test ends this connection: the test calls reconnect().
    client.on('error', () => {});
    await client.connect();
    return client;
  };
  let sql = await connect();
  await sql.query(options.schema);
  const simulator = await startSimulator(options.simulator);
  const dir = await mkdtemp(join(tmpdir(), `verbose-sync-fault-${options.label}-`));
  const stateDir = join(dir, 'state');
  const daemons: DaemonProcess[] = [];

  const yaml = ({ stateDir: runStateDir = stateDir, ...settings }: RunSettings = {}): string =>
    testConfigYaml(
      {
        db: { url, name: database },
        verboseUrl: simulator.url,
        stateDir: runStateDir,
        mappings: options.mappings,
      },
      {
        ...settings,
        requestTimeoutMs: settings.requestTimeoutMs ?? 5000,
        shutdownTimeoutMs: settings.shutdownTimeoutMs ?? 2000,
        httpHost: '127.0.0.1',
        chunkSize: 500,
      },
    );

  return {
    database,
    url,
    get sql() {
      return sql;
    },
    async reconnect() {
      await sql.end().catch(() => {});
      sql = await connect();
    },
    simulator,
    dir,
    stateDir,
    yaml,
    async spawn(settings = {}, args = []) {
      const daemon = await spawnDaemon(dir, yaml(settings), args, { LOG_LEVEL: 'info' });
      daemons.push(daemon);
      return daemon;
    },
    async slot() {
      const { rows } = await sql.query<{ confirmed: string | null; active_pid: number | null }>(
        'SELECT confirmed_flush_lsn::text AS confirmed, active_pid FROM pg_replication_slots WHERE slot_name = $1',
        [database],
      );
      const row = rows[0];
      if (!row) return undefined;
      return {
        confirmed: row.confirmed === null ? null : parseLsn(row.confirmed),
        activePid: row.active_pid,
      };
    },
    async savedCheckpoint(from = stateDir) {
      let text: string;
      try {
        text = await readFile(join(from, 'checkpoint.json'), 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      return parseLsn((JSON.parse(text) as { lsn: string }).lsn);
    },
    printDaemonOutput() {
      daemons.forEach((daemon, index) => {
        const lines = daemon
          .output()
          .split('\n')
          .filter((line) => !line.includes('"level":"debug"'));
        console.log(`daemon ${index + 1} of ${database}, last lines:\n${lines.slice(-40).join('\n')}`);
      });
    },
    async close() {
      for (const daemon of [...daemons].reverse()) {
        if (daemon.child.exitCode === null && daemon.child.signalCode === null) {
          daemon.kill('SIGKILL');
          await daemon.exited;
        }
      }
      await sql.end().catch(() => {});
      await simulator.close();
      await withAdmin(serverUrl, async (admin) => {
        await admin.query(
          'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL',
          [database],
        );
        await admin.query(
          'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1',
          [database],
        );
        await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      }).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function withAdmin<T>(serverUrl: string, body: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  try {
    return await body(admin);
  } finally {
    await admin.end();
  }
}

/** True while the process has not exited. */
export function running(daemon: DaemonProcess): boolean {
  return daemon.child.exitCode === null && daemon.child.signalCode === null;
}

/** Kills the daemon without a chance to clean up, as a crash or an OOM kill would. */
export async function crash(daemon: DaemonProcess): Promise<void> {
  if (running(daemon)) daemon.kill('SIGKILL');
  await daemon.exited;
}

/** SIGTERM, and the exit it leads to. */
export async function terminate(
  daemon: DaemonProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  daemon.kill('SIGTERM');
  return daemon.exited;
}

/** The seed of a random run: `FAULT_SEED` replays one, else a new one. Printed so a failure can be replayed. */
export function faultSeed(): number {
  const given = process.env.FAULT_SEED;
  const seed = given ? Number(given) : randomBytes(4).readUInt32BE(0);
  if (!Number.isSafeInteger(seed)) throw new Error(`FAULT_SEED must be a whole number, got ${given}`);
  console.log('fault seed', seed);
  return seed;
}

/**
 * The contacts the simulator holds, as `phone → first_name`, for comparing with what the test expects
 * (a mismatch shows the phones that differ rather than two maps of thousands).
 */
export function heldContacts(simulator: Simulator): Map<string, string | undefined> {
  return new Map(simulator.store.contacts().map((contact) => [contact.phone, contact.first_name]));
}

/** The phones whose contact differs between `held` and `expected`, at most `max` of them, for a readable failure. */
export function differences(
  held: ReadonlyMap<string, string | undefined>,
  expected: ReadonlyMap<string, string>,
  max = 10,
): string[] {
  const out: string[] = [];
  for (const [phone, name] of expected) {
    if (held.get(phone) !== name) out.push(`${phone}: expected ${name}, held ${held.get(phone) ?? '(none)'}`);
    if (out.length >= max) return out;
  }
  for (const [phone, name] of held) {
    if (!expected.has(phone)) out.push(`${phone}: not expected, held ${name ?? '(no name)'}`);
    if (out.length >= max) return out;
  }
  return out;
}

/** Writes `changes` of `workload`'s changes, in transactions of 1 to `largest`, sizes drawn from `random`. */
export async function writeTransactions(
  rig: FaultRig,
  workload: CrmWorkload,
  changes: number,
  random: () => number,
  largest: number,
): Promise<void> {
  for (let written = 0; written < changes; ) {
    const transaction = workload.transaction(Math.min(changes - written, 1 + Math.floor(random() * largest)));
    await rig.sql.query(transaction.sql);
    written += transaction.changes;
  }
}

/**
 * Waits until Verbose holds exactly the contacts `workload` expects, then until the checkpoint has passed
 * every write so far; a timeout names the phones that differ.
 */
export async function waitUntilCaughtUp(
  rig: FaultRig,
  workload: CrmWorkload,
  timeouts: { contactsMs: number; checkpointMs: number },
): Promise<void> {
  const { rows } = await rig.sql.query<{ end: string }>('SELECT pg_current_wal_lsn()::text AS end');
  const endOfWrites = parseLsn(rows[0]!.end);
  await eventually(
    () => differences(heldContacts(rig.simulator), workload.expected, 1).length === 0,
    timeouts.contactsMs,
    'every contact',
  ).catch((error: Error) => {
    throw new Error(
      `${error.message}: ${differences(heldContacts(rig.simulator), workload.expected).join('; ')}`,
    );
  });
  await eventually(
    async () => ((await rig.savedCheckpoint()) ?? 0n) >= endOfWrites,
    timeouts.checkpointMs,
    'the checkpoint to pass the last write',
  );
}
