import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { eventually } from '../support/pipeline.js';
import { CRM_MAPPINGS, CRM_SCHEMA } from './crmWorkload.js';
import { createFaultRig, type FaultRig, type RunSettings, terminate } from './faultRig.js';

const API_KEY = 'as_live_f4ult_suite_s3cret_key';
/**
 * No heartbeats: every acknowledged position is then a transaction's commit, so "acknowledged before row k"
 * can be checked exactly against a WAL position read inside row k's own transaction.
 */
const SETTINGS: RunSettings = {
  apiKey: API_KEY,
  heartbeatIntervalMs: 0,
  batchSize: 5,
  flushIntervalMs: 20,
  concurrency: 2,
};

interface Written {
  phone: string;
  /** The WAL insert position after the row's INSERT, before its COMMIT: its commit LSN is at or after it. */
  before: bigint;
}

describe('the API key revoked mid-run', () => {
  let rig: FaultRig;
  beforeAll(async () => {
    rig = await createFaultRig({
      label: 'revoked',
      schema: CRM_SCHEMA,
      mappings: CRM_MAPPINGS,
      simulator: { apiKey: API_KEY, faults: { latencyMs: 10, latencyJitterMs: 20 } },
    });
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(() => rig.close());

  it('exits 1 saying the key was refused, acknowledges nothing it could not deliver, and delivers it once the key works', async () => {
    const daemon = await rig.spawn(SETTINGS);
    await daemon.waitForLog(/^streaming/);

    const written: Written[] = [];
    // One row per transaction, written steadily, so the revocation falls between batches in flight.
    const writing = (async () => {
      for (let i = 0; i < 400; i++) {
        const phone = `+1212555${String(i).padStart(4, '0')}`;
        const results = (await rig.sql.query(
          `BEGIN; INSERT INTO people VALUES (${i}, 'n${i}', '${phone}'); SELECT pg_current_wal_insert_lsn()::text AS before; COMMIT`,
        )) as unknown as pg.QueryResult<{ before?: string }>[];
        written.push({ phone, before: parseLsn(results[2]!.rows[0]!.before!) });
        await sleep(2);
      }
    })();
    await eventually(() => rig.simulator.store.size >= 150, 20_000, '150 contacts accepted');
    rig.simulator.revokeKey();
    const exit = await daemon.exited;
    await writing;

    expect(exit).toEqual({ code: 1, signal: null });
    const output = daemon.output();
    expect(output).toMatch(/verbose-sync: Verbose refused the API key \(HTTP 401\)/);
    expect(output).toMatch(/verbose\.api_key/);
    expect(output).not.toContain(API_KEY);

    // Every row at or before the acknowledged position was accepted: the first row Verbose does not hold
    // committed after it, in the checkpoint file and in the slot alike.
    const held = new Set(rig.simulator.store.contacts().map((contact) => contact.phone));
    const firstMissing = written.find((row) => !held.has(row.phone));
    expect(firstMissing).toBeDefined();
    const saved = await rig.savedCheckpoint();
    const slot = await rig.slot();
    expect(saved).toBeDefined();
    expect(saved!).toBeLessThan(firstMissing!.before);
    expect(slot?.confirmed).not.toBeNull();
    expect(slot!.confirmed!).toBeLessThanOrEqual(firstMissing!.before);

    // Still revoked: a restart stops at the key check, sending and acknowledging nothing.
    const requestsBefore = rig.simulator.requests.count();
    const refused = await rig.spawn(SETTINGS);
    expect(await refused.exited).toEqual({ code: 1, signal: null });
    expect(refused.output()).toMatch(/Verbose refused the API key/);
    expect(refused.output()).not.toContain(API_KEY);
    expect(rig.simulator.requests.count()).toBe(requestsBefore + 1);
    expect(await rig.savedCheckpoint()).toBe(saved);

    // A working key again, and a Verbose that forgot everything: what comes now is what was never acknowledged.
    rig.simulator.reset();
    const again = await rig.spawn(SETTINGS);
    const missing = written.filter((row) => !held.has(row.phone));
    await eventually(
      () => missing.every((row) => rig.simulator.store.contact(row.phone) !== undefined),
      20_000,
      `the ${missing.length} contacts not accepted before the revocation`,
    );
    expect(await terminate(again)).toEqual({ code: 0, signal: null });
  });
});
