import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Row } from '../../src/domain.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/embedded/embeddedPostgres.js';
import { parseLsn } from '../../src/lsn.js';
import { Mapper } from '../../src/mapping/mapper.js';
import type { DaemonProcess } from '../support/daemonProcess.js';
import { eventually } from '../support/pipeline.js';
import { postgres14Package } from '../support/postgres14.js';
import { createFaultRig, type FaultRig, terminate } from './faultRig.js';

/**
 * `family_name` is stored out of line, uncompressed, whenever it is long: an UPDATE that leaves it alone makes
 * the server send "unchanged TOAST value" instead of the value. `audit_log` is not mapped: it writes WAL
 * that the slot must not pin.
 */
const SCHEMA = `
  CREATE TABLE people (id int PRIMARY KEY, given_name text, family_name text, mobile text);
  ALTER TABLE people ALTER COLUMN family_name SET STORAGE EXTERNAL;
  CREATE TABLE audit_log (id bigserial PRIMARY KEY, entry text);`;

const MAPPINGS = `
mappings:
  - table: public.people
    list: CRM people
    fields: { phone: mobile, first_name: given_name, last_name: family_name }`;

const LONG_FAMILY_NAME = 'Lovelace-Byron-King-Noel '.repeat(160).trim();

const phone = (id: number) => `+1212555${String(id).padStart(4, '0')}`;

/** The oldest supported major: the core end-to-end scenarios on a PostgreSQL 14 server of this file's own. */
describe('on PostgreSQL 14', () => {
  let server: EmbeddedPostgres;
  let rig: FaultRig;
  let daemon: DaemonProcess;

  beforeAll(async () => {
    server = await startEmbeddedPostgres({ serverPackage: await postgres14Package() });
    rig = await createFaultRig({
      label: 'pg14',
      schema: SCHEMA,
      mappings: MAPPINGS,
      serverUrl: server.url(),
    });
    const { rows } = await rig.sql.query<{ major: string }>(
      `SELECT current_setting('server_version_num') AS major`,
    );
    expect(Math.floor(Number(rows[0]!.major) / 10_000)).toBe(14);
    await rig.sql.query(
      `INSERT INTO people SELECT i, 'Person', 'Number ' || i, '+1212555' || lpad(i::text, 4, '0') FROM generate_series(1, 300) i`,
    );
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(async () => {
    await rig?.close();
    await server?.stop();
  });

  it('creates its slot and publication, and loads the existing rows on its first start', async () => {
    daemon = await rig.spawn();
    await daemon.waitForLog(/^streaming/);
    const { rows: slots } = await rig.sql.query<{ plugin: string; slot_type: string }>(
      'SELECT plugin, slot_type FROM pg_replication_slots WHERE slot_name = $1',
      [rig.database],
    );
    expect(slots).toEqual([{ plugin: 'pgoutput', slot_type: 'logical' }]);
    const { rows: tables } = await rig.sql.query<{ name: string }>(
      `SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = $1`,
      [rig.database],
    );
    expect(tables).toEqual([{ name: 'public.people' }]);
    await eventually(() => rig.simulator.store.size === 300, 20_000, 'the 300 existing rows');
    expect(rig.simulator.store.contact(phone(42))).toMatchObject({
      first_name: 'Person',
      last_name: 'Number 42',
    });
  });

  it('streams inserts, updates, deletes and a truncate', async () => {
    await rig.sql.query(`INSERT INTO people VALUES (1001, 'Ada', 'Lovelace', '${phone(1001)}')`);
    await rig.sql.query(`UPDATE people SET given_name = 'Grace', family_name = 'Hopper' WHERE id = 7`);
    await rig.sql.query('DELETE FROM people WHERE id = 8');
    await eventually(() => rig.simulator.store.contact(phone(1001)), 10_000, 'the insert');
    await eventually(
      () => rig.simulator.store.contact(phone(7))?.first_name === 'Grace',
      10_000,
      'the update',
    );
    await rig.sql.query('TRUNCATE people');
    await rig.sql.query(`INSERT INTO people VALUES (1002, 'Katherine', 'Johnson', '${phone(1002)}')`);
    await eventually(() => rig.simulator.store.contact(phone(1002)), 10_000, 'an insert after the truncate');
    // Verbose has no delete: the deleted and truncated rows' contacts stay as they were.
    expect(rig.simulator.store.contact(phone(8))).toMatchObject({
      first_name: 'Person',
      last_name: 'Number 8',
      writes: 1,
    });
    expect(rig.simulator.store.contact(phone(7))).toMatchObject({ first_name: 'Grace', last_name: 'Hopper' });
    expect(rig.simulator.store.size).toBe(302);
  });

  it('leaves an unchanged TOAST value out of the upsert instead of clearing it', async () => {
    await rig.sql.query(
      `INSERT INTO people VALUES (2001, 'Augusta', '${LONG_FAMILY_NAME}', '${phone(2001)}')`,
    );
    // What the mapping makes of the row as stored (it cuts long values), the TOASTed column included.
    const { rows } = await rig.sql.query<Row>('SELECT * FROM people WHERE id = 2001');
    const [outcome] = Mapper.fromConfig(parseConfig(rig.yaml(), 'sync.yaml', {}).config).map({
      table: 'public.people',
      op: 'insert',
      row: rows[0]!,
      key: { id: 2001 },
      commitLsn: 1n,
    });
    const familyName = outcome?.kind === 'contact' ? outcome.contact.fields.last_name : undefined;
    expect(familyName?.length).toBeGreaterThan(100);
    await eventually(
      () => rig.simulator.store.contact(phone(2001))?.last_name === familyName,
      10_000,
      'the long family name',
    );
    // Stored out of line, so the update below leaves it out of the WAL.
    const { rows: toast } = await rig.sql.query<{ name: string }>(
      `SELECT reltoastrelid::regclass::text AS name FROM pg_class WHERE oid = 'people'::regclass`,
    );
    const { rows: chunks } = await rig.sql.query<{ count: string }>(`SELECT count(*) FROM ${toast[0]!.name}`);
    expect(Number(chunks[0]!.count)).toBeGreaterThan(0);
    await rig.sql.query(`UPDATE people SET given_name = 'Ada' WHERE id = 2001`);
    await eventually(
      () => rig.simulator.store.contact(phone(2001))?.first_name === 'Ada',
      10_000,
      'the update',
    );
    expect(rig.simulator.store.contact(phone(2001))).toMatchObject({
      last_name: familyName,
      writes: 2,
    });
  });

  it('moves an idle slot forward with heartbeats while unmapped tables write', async () => {
    await rig.sql.query(
      `INSERT INTO audit_log (entry) SELECT repeat('x', 200) FROM generate_series(1, 2000)`,
    );
    const { rows } = await rig.sql.query<{ end: string }>('SELECT pg_current_wal_lsn()::text AS end');
    const endOfWrites = parseLsn(rows[0]!.end);
    const requests = rig.simulator.requests.count();
    await eventually(
      async () => ((await rig.slot())?.confirmed ?? 0n) >= endOfWrites,
      15_000,
      'the slot to pass the unmapped writes',
    );
    expect(await rig.savedCheckpoint()).toBeGreaterThanOrEqual(endOfWrites);
    expect(rig.simulator.requests.count()).toBe(requests);
  });

  it('resumes from its checkpoint after a restart, sending nothing twice', async () => {
    expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
    const checkpoint = await rig.savedCheckpoint();
    const confirmed = (await rig.slot())?.confirmed;
    expect(confirmed).toBe(checkpoint! + 1n);

    await rig.sql.query(
      `INSERT INTO people SELECT i, 'Later', 'Row ' || i, '+1212555' || lpad(i::text, 4, '0') FROM generate_series(3001, 3050) i`,
    );
    await rig.sql.query(`UPDATE people SET family_name = 'Noel' WHERE id = 1002`);
    const accepted = rig.simulator.requests.contactsAccepted();
    daemon = await rig.spawn();
    await eventually(
      () => rig.simulator.store.contact(phone(3050)),
      10_000,
      'the rows written while stopped',
    );
    await eventually(
      () => rig.simulator.store.contact(phone(1002))?.last_name === 'Noel',
      10_000,
      'the update',
    );
    expect(rig.simulator.requests.contactsAccepted() - accepted).toBe(51);
    expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
  });
});
