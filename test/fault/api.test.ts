import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FaultChanges } from '../../src/simulator/simulator.js';
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
      await writeTransactions(rig, workload, changes, random, 10);
      await waitUntilCaughtUp(rig, workload, { contactsMs: 45_000, checkpointMs: 30_000 });
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

  it('delivers everything while answers come after request_timeout_ms', async () => {
    // Every answer late at first, then in time. Just past the timeout, a timed-out request lands in Verbose
    // before its retry (sent at the timeout or later) can be accepted, so nothing stale can land after a newer
    // state: a longer delay could, and no client can prevent that without help from the API.
    rig.simulator.requests.clear();
    rig.simulator.setFaults({ latencyMs: REQUEST_TIMEOUT_MS + 50 });
    try {
      await writeTransactions(rig, workload, 150, random, 10);
      await eventually(
        () => rig.simulator.requests.entries().some((entry) => entry.durationMs > REQUEST_TIMEOUT_MS),
        20_000,
        'an answer later than request_timeout_ms',
      );
      rig.simulator.setFaults({ latencyMs: 100, latencyJitterMs: 100 });
      await waitUntilCaughtUp(rig, workload, { contactsMs: 45_000, checkpointMs: 30_000 });
    } finally {
      rig.simulator.setFaults({ latencyMs: 0, latencyJitterMs: 0 });
    }
    expect(running(daemon)).toBe(true);
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
