import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { startDedicatedServer } from './dedicatedServer.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const SETTINGS = { chunkSize: 100, batchSize: 100, requestsPerSecond: 100 };

/**
 * The race the watermark method leaves open in PostgreSQL: a transaction's commit record is in the WAL (so the
 * stream delivers it before the chunk's low watermark) before the transaction is visible to other sessions. A
 * chunk read in that gap holds the older row, which would enter the pipeline after the newer change.
 *
 * A commit that waits for a synchronous standby stays in that gap until the standby answers, which makes the
 * race deterministic: this file's server (its own, since every commit on it is affected) is told to wait for a
 * standby that never connects, and the one CRM session that commits with `synchronous_commit = on` waits until
 * synchronous replication is turned off again, which plays the standby answering.
 */
describe('a full resync next to a commit that is in the WAL but not yet visible', () => {
  let p: ResyncPipeline;
  let writer: pg.Client | undefined;
  beforeAll(async () => {
    const { db } = await startDedicatedServer({});
    p = await createResyncPipeline('resync_visibility', PEOPLE_MAPPINGS, PEOPLE_SCHEMA, db);
    await p.db.query(insertPeople(3));
  });
  afterAll(async () => {
    await standby('');
    await writer?.end();
    await p.close();
  });

  async function standby(names: string): Promise<void> {
    await p.db.query(`ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
    await p.db.query(`SELECT pg_reload_conf()`);
  }

  const waitingForStandby = async (where: string, value: string | number) =>
    (
      await p.db.query(`SELECT 1 FROM pg_stat_activity WHERE ${where} = $1 AND wait_event = 'SyncRep'`, [
        value,
      ])
    ).rowCount === 1;

  it('sends the newer row: the chunk waits for that commit like the CRM does, then reads it', async () => {
    const first = await p.start(SETTINGS);
    await eventually(
      () => first.logs.some((l) => l.msg === 'full resync finished'),
      20_000,
      'the first load',
    );
    await p.caughtUp();
    expect(p.simulator.store.contact('+12125200001')?.first_name).toBe('Person');

    await standby('standby_that_never_answers');
    writer = new pg.Client(p.db.url);
    await writer.connect();
    await writer.query(`SET synchronous_commit = on`);
    const { rows } = await writer.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`);
    const pid = rows[0]!.pid;
    // The server applies the new setting a moment after the reload: rename until the commit waits.
    let renaming: Promise<unknown> | undefined;
    await eventually(
      async () => {
        let settled = false;
        renaming ??= writer!.query(`UPDATE people SET name = 'Ada Lovelace' WHERE id = 1`).finally(() => {
          settled = true;
        });
        if (await waitingForStandby('pid', pid)) return true;
        if (settled) renaming = undefined;
        return false;
      },
      10_000,
      'the rename to wait for the standby',
    );
    // Committed locally and streamed: Verbose has the new name although no other session sees it yet.
    await eventually(
      () => p.simulator.store.contact('+12125200001')?.first_name === 'Ada',
      10_000,
      'the streamed rename',
    );
    await first.daemon.stop();

    const second = await p.start(SETTINGS, { fullResync: true });
    let chunkWaited = false;
    await eventually(
      async () => {
        chunkWaited = await waitingForStandby('application_name', 'verbose-sync resync');
        return chunkWaited || second.logs.some((l) => l.msg === 'full resync finished');
      },
      20_000,
      'the resync to wait for the standby, or to finish',
    );
    await standby('');
    await renaming;
    await eventually(() => second.logs.some((l) => l.msg === 'full resync finished'), 20_000, 'the resync');
    await p.caughtUp();

    expect(p.simulator.store.contact('+12125200001')).toMatchObject({
      first_name: 'Ada',
      last_name: 'Lovelace',
    });
    expect(chunkWaited).toBe(true);
  });
});
