import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/embedded/embeddedPostgres.js';
import type { DaemonProcess } from '../support/daemonProcess.js';
import { eventually } from '../support/pipeline.js';
import { seededRandom } from '../support/seededRandom.js';
import { CRM_MAPPINGS, CRM_SCHEMA, CrmWorkload } from './crmWorkload.js';
import {
  createFaultRig,
  differences,
  type FaultRig,
  faultSeed,
  heldContacts,
  running,
  terminate,
  waitUntilCaughtUp,
  writeTransactions,
} from './faultRig.js';

/**
 * A server of this file's own (the shared one cannot be restarted under other files), a daemon process on it,
 * and a Verbose slow enough that changes are still waiting for delivery when the connection goes.
 */
describe('PostgreSQL going away mid-stream', () => {
  let server: EmbeddedPostgres;
  let rig: FaultRig;
  let daemon: DaemonProcess;
  let workload: CrmWorkload;
  let random: () => number;

  beforeAll(async () => {
    const seed = faultSeed();
    random = seededRandom(seed);
    workload = new CrmWorkload(seededRandom(seed + 1));
    server = await startEmbeddedPostgres();
    rig = await createFaultRig({
      label: 'pg_outage',
      schema: CRM_SCHEMA,
      mappings: CRM_MAPPINGS,
      serverUrl: server.url(),
      simulator: { faults: { latencyMs: 20, latencyJitterMs: 20 } },
    });
    await rig.sql.query(workload.initialRows(500));
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(async () => {
    await rig?.close();
    await server?.stop();
  });

  const write = (changes: number) => writeTransactions(rig, workload, changes, random, 20);
  /** Verbose holds exactly the expected contacts, and the checkpoint has passed every write. */
  const caughtUp = () => waitUntilCaughtUp(rig, workload, { contactsMs: 30_000, checkpointMs: 15_000 });

  const reconnects = () => daemon.logs.filter((line) => line.msg === 'replication stream reconnected').length;

  it('loses nothing when the server restarts as the first start begins to load the existing rows', async () => {
    daemon = await rig.spawn({ batchSize: 50, requestsPerSecond: 20, concurrency: 2 });
    await daemon.waitForLog(/^first start/);
    await server.restart();
    await rig.reconnect();
    await write(500);
    await caughtUp();
    expect(running(daemon)).toBe(true);
  });

  it('loses nothing when the server restarts while changes wait for delivery', async () => {
    await write(2_000);
    expect(rig.simulator.store.size).toBeLessThan(workload.expected.size);
    await server.restart();
    await rig.reconnect();
    await write(1_000);
    await caughtUp();
    expect(reconnects()).toBeGreaterThanOrEqual(1);
    expect(running(daemon)).toBe(true);
  });

  it('loses nothing when its walsender is terminated, again and again', async () => {
    const before = reconnects();
    for (let round = 0; round < 3; round++) {
      await write(500);
      await eventually(async () => (await rig.slot())?.activePid, 15_000, 'the stream to be connected');
      const { rows } = await rig.sql.query<{ terminated: boolean }>(
        'SELECT pg_terminate_backend(active_pid) AS terminated FROM pg_replication_slots WHERE slot_name = $1',
        [rig.database],
      );
      expect(rows[0]?.terminated).toBe(true);
    }
    await write(500);
    await caughtUp();
    expect(reconnects() - before).toBeGreaterThanOrEqual(3);
    expect(running(daemon)).toBe(true);
  });

  it('stops cleanly after all of it', async () => {
    expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
    expect(differences(heldContacts(rig.simulator), workload.expected)).toEqual([]);
  });
});
