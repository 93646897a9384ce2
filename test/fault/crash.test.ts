import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { eventually } from '../support/pipeline.js';
import { seededRandom } from '../support/seededRandom.js';
import { CRM_MAPPINGS, CRM_SCHEMA, CrmWorkload, type Transaction } from './crmWorkload.js';
import {
  crash,
  createFaultRig,
  differences,
  type FaultRig,
  faultSeed,
  heldContacts,
  type RunSettings,
  terminate,
} from './faultRig.js';

const CHANGES = 20_000;
const KILLS = 12;
const INITIAL_ROWS = 1_000;
const BIG_TRANSACTION = 3_000;

/** Small batches, requests in flight most of the time: a kill lands mid-request as often as between. */
const SETTINGS: RunSettings = {
  batchSize: 200,
  flushIntervalMs: 100,
  requestsPerSecond: 100,
  concurrency: 4,
};

describe('SIGKILL at random moments', () => {
  let rig: FaultRig;
  beforeAll(async () => {
    rig = await createFaultRig({
      label: 'crash',
      schema: CRM_SCHEMA,
      mappings: CRM_MAPPINGS,
      simulator: { faults: { latencyMs: 5, latencyJitterMs: 30 } },
    });
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(() => rig.close());

  it(`loses nothing over ${KILLS} kills and restarts during ${CHANGES} changes`, async () => {
    const seed = faultSeed();
    const random = seededRandom(seed);
    const workload = new CrmWorkload(random);
    await rig.sql.query(workload.initialRows(INITIAL_ROWS));

    // Planned in commit order, so the model applies every change in the order the server commits it. The
    // big transaction opens a random cycle; the others share out the rest evenly.
    const bigAt = Math.floor(random() * KILLS);
    const segments: Transaction[][] = [];
    let regular = 0;
    for (let cycle = 0; cycle < KILLS; cycle++) {
      const segment: Transaction[] = cycle === bigAt ? [workload.bigTransaction(BIG_TRANSACTION)] : [];
      const until = Math.round(((cycle + 1) * (CHANGES - BIG_TRANSACTION)) / KILLS);
      while (regular < until) {
        const transaction = workload.transaction(Math.min(until - regular, 1 + Math.floor(random() * 20)));
        segment.push(transaction);
        regular += transaction.changes;
      }
      segments.push(segment);
    }
    const killAfterMs = segments.map(() => 100 + Math.floor(random() * 1_400));

    let written = 0;
    for (let cycle = 0; cycle < KILLS; cycle++) {
      const daemon = await rig.spawn(SETTINGS);
      // The first start creates the slot: rows written before it exists would reach Verbose only as their
      // last state, which is not what the model expects.
      if (cycle === 0) await daemon.waitForLog(/^created the replication slot/);
      const writing = (async () => {
        for (const transaction of segments[cycle]!) {
          await rig.sql.query(transaction.sql);
          written += transaction.changes;
        }
      })();
      await sleep(killAfterMs[cycle]!);
      await crash(daemon);
      expect((await daemon.exited).signal).toBe('SIGKILL');
      await writing;
    }
    expect(written).toBe(CHANGES);

    const { rows } = await rig.sql.query<{ end: string }>('SELECT pg_current_wal_lsn()::text AS end');
    const endOfWrites = parseLsn(rows[0]!.end);

    const last = await rig.spawn(SETTINGS);
    await last.waitForLog(/^streaming/);
    const expected = workload.expected;
    await eventually(
      () =>
        rig.simulator.store.size === expected.size &&
        differences(heldContacts(rig.simulator), expected, 1).length === 0,
      60_000,
      `the simulator to hold the ${expected.size} expected contacts (seed ${seed})`,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}; held ${rig.simulator.store.size}; first differences:\n` +
          differences(heldContacts(rig.simulator), expected).join('\n'),
      );
    });
    // Caught up, the slot moves past every write (the heartbeats carry it beyond the last commit).
    await eventually(
      async () => ((await rig.savedCheckpoint()) ?? 0n) >= endOfWrites,
      10_000,
      'the checkpoint to pass the last write',
    );
    expect(await terminate(last)).toEqual({ code: 0, signal: null });
    expect((await rig.slot())?.confirmed).toBeGreaterThanOrEqual(endOfWrites);
    expect(differences(heldContacts(rig.simulator), expected)).toEqual([]);
  });
});

describe('SIGKILL during the first start', () => {
  let rig: FaultRig;
  beforeAll(async () => {
    rig = await createFaultRig({
      label: 'first_start',
      schema: CRM_SCHEMA,
      mappings: CRM_MAPPINGS,
      // A slow API holds the first start between creating the slot and loading the existing rows.
      simulator: { faults: { latencyMs: 2_000 } },
    });
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(() => rig.close());

  it('still loads every existing row when killed right after the slot was created', async () => {
    const workload = new CrmWorkload(seededRandom(1));
    await rig.sql.query(workload.initialRows(300));
    const first = await rig.spawn();
    await first.waitForLog(/^created the replication slot/);
    await crash(first);

    rig.simulator.setFaults({ latencyMs: 0 });
    const second = await rig.spawn();
    await eventually(
      () => differences(heldContacts(rig.simulator), workload.expected, 1).length === 0,
      20_000,
      'the 300 rows that existed before the first start',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; held ${rig.simulator.store.size} contacts`);
    });
    expect(await terminate(second)).toEqual({ code: 0, signal: null });
  });
});
