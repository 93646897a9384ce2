import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import type { FaultChanges } from '../../src/simulator/simulator.js';
import type { DaemonProcess } from '../support/daemonProcess.js';
import { eventually } from '../support/pipeline.js';
import { CRM_MAPPINGS, CRM_SCHEMA, CrmWorkload } from './crmWorkload.js';
import {
  createFaultRig,
  differences,
  type FaultRig,
  faultSeed,
  heldContacts,
  running,
  seededRandom,
  terminate,
} from './faultRig.js';

const REQUEST_TIMEOUT_MS = 500;

/**
 * One daemon process lives through every misbehaviour of the API in turn. Small batches make many requests,
 * so each fault is met many times; every scenario ends with Verbose holding exactly what the CRM says, the
 * checkpoint past the last write, and the daemon still running.
 */
describe('an API that misbehaves', () => {
  let rig: FaultRig;
  let daemon: DaemonProcess;
  let workload: CrmWorkload;
  let random: () => number;

  beforeAll(async () => {
    const seed = faultSeed();
    random = seededRandom(seed);
    workload = new CrmWorkload(seededRandom(seed + 1));
    rig = await createFaultRig({
      label: 'api',
      schema: CRM_SCHEMA,
      mappings: CRM_MAPPINGS,
      // Fault decisions drawn from the seed too, so a replay meets faults in the same order of requests.
      simulator: { random: seededRandom(seed + 2) },
    });
    daemon = await rig.spawn({
      batchSize: 10,
      flushIntervalMs: 20,
      requestsPerSecond: 50,
      concurrency: 4,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    await daemon.waitForLog(/^streaming/);
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(() => rig.close());

  /** Writes `changes` under `faults`, then waits for Verbose to hold every expected contact. */
  async function deliverUnder(faults: FaultChanges, changes: number): Promise<void> {
    rig.simulator.requests.clear();
    rig.simulator.setFaults(faults);
    try {
      for (let written = 0; written < changes; ) {
        const transaction = workload.transaction(Math.min(changes - written, 1 + Math.floor(random() * 10)));
        await rig.sql.query(transaction.sql);
        written += transaction.changes;
      }
      const { rows } = await rig.sql.query<{ end: string }>('SELECT pg_current_wal_lsn()::text AS end');
      const endOfWrites = parseLsn(rows[0]!.end);
      await eventually(
        () => differences(heldContacts(rig.simulator), workload.expected, 1).length === 0,
        45_000,
        'every contact',
      ).catch((error: Error) => {
        throw new Error(
          `${error.message}: ${differences(heldContacts(rig.simulator), workload.expected).join('; ')}`,
        );
      });
      await eventually(
        async () => ((await rig.savedCheckpoint()) ?? 0n) >= endOfWrites,
        30_000,
        'the checkpoint to pass the last write',
      );
    } finally {
      rig.simulator.setFaults({
        errorRate: 0,
        dropRate: 0,
        lostResponseRate: 0,
        latencyMs: 0,
        latencyJitterMs: 0,
        rateLimitPerSecond: null,
      });
    }
    expect(running(daemon)).toBe(true);
  }

  it('delivers everything while 30% of requests are answered 500', async () => {
    await deliverUnder({ errorRate: 0.3 }, 400);
    expect(rig.simulator.requests.countOf(500)).toBeGreaterThan(0);
  });

  it('delivers everything while 30% of connections are dropped before the request is handled', async () => {
    await deliverUnder({ dropRate: 0.3 }, 400);
    expect(rig.simulator.requests.countOf('dropped')).toBeGreaterThan(0);
  });

  it('delivers everything while 30% of answers are lost after the contacts were stored', async () => {
    await deliverUnder({ lostResponseRate: 0.3 }, 400);
    expect(rig.simulator.requests.countOf('dropped')).toBeGreaterThan(0);
  });

  it('delivers everything while some answers come after request_timeout_ms', async () => {
    // 200–600 ms against a 500 ms timeout: about a quarter of the requests time out. A timed-out request
    // still lands in Verbose, and before its retry can (sent at 500 ms or later, it takes 200 ms at least):
    // a jitter longer than the timeout plus the shortest latency would let a stale request land after a
    // newer state of the same phone, which no client can prevent without help from the API.
    await deliverUnder({ latencyMs: 200, latencyJitterMs: 400 }, 150);
    const late = rig.simulator.requests.entries().filter((entry) => entry.durationMs > REQUEST_TIMEOUT_MS);
    expect(late.length).toBeGreaterThan(0);
  });

  it('delivers everything while Verbose throttles below the rate budget with 429s', async () => {
    await deliverUnder({ rateLimitPerSecond: 5 }, 200);
    expect(rig.simulator.requests.countOf(429)).toBeGreaterThan(0);
  });

  it('is still running after all of it, and stops cleanly on SIGTERM', async () => {
    expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
    expect(differences(heldContacts(rig.simulator), workload.expected)).toEqual([]);
  });
});
