import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../src/domain.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { type Collector, counterValue, type StreamFixture, streamFor, waitFor } from './helpers.js';

const TABLES = [
  'public.people',
  'public.full_people',
  'public.docs',
  'public.vals',
  'public.bulk',
  'public.evolving',
  'public.Person',
  'crm.accounts',
];

describe('ChangeStream: changes from the slot', () => {
  let db: TestDatabase;
  let fixture: StreamFixture;
  let collector: Collector;

  beforeAll(async () => {
    db = await createTestDatabase('source_stream');
    await db.query(`
      CREATE TYPE mood AS ENUM ('happy', 'sad');
      CREATE DOMAIN positive AS int4 CHECK (VALUE > 0);
      CREATE SCHEMA crm;
      CREATE TABLE people (id bigint PRIMARY KEY, name text, phone text);
      CREATE TABLE full_people (id int PRIMARY KEY, name text, phone text);
      ALTER TABLE full_people REPLICA IDENTITY FULL;
      CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
      ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
      CREATE TABLE vals (
        id int PRIMARY KEY, big int8, amount numeric, at timestamptz, local timestamp, day date,
        doc jsonb, js json, tags text[], nums int8[], flag bool, ratio float8, small int2, uid uuid,
        feeling mood, feelings mood[], count positive, nothing text);
      CREATE TABLE bulk (id int PRIMARY KEY, name text);
      CREATE TABLE evolving (id int PRIMARY KEY, name text);
      CREATE TABLE "Person" (id int PRIMARY KEY, "nameFirstName" text, "phoneNumber" text);
      CREATE TABLE crm.accounts (id int PRIMARY KEY, name text);
    `);
    fixture = await streamFor(db.url, 'stream_main', TABLES);
    collector = fixture.collector;
    await fixture.stream.start();
    expect(fixture.stream.connected).toBe(true);
  });

  afterAll(async () => {
    await fixture?.stream.stop();
    await db?.drop();
  });

  it('delivers inserts, updates and deletes of a table with a primary key, each closed by its commit', async () => {
    await db.query(`INSERT INTO people VALUES (1, 'Ada', '+15550001'), (2, 'Grace', '+15550002')`);
    await db.query(`UPDATE people SET name = 'Ada L.' WHERE id = 1`);
    await db.query(`UPDATE people SET id = 3 WHERE id = 2`);
    await db.query(`DELETE FROM people WHERE id = 1`);
    const changes = await waitFor(
      () => collector.rows('public.people').length === 5 && collector.rows('public.people'),
    );

    expect(changes.map((c) => [c.op, c.row, c.key, c.oldKey])).toEqual([
      ['insert', { id: '1', name: 'Ada', phone: '+15550001' }, { id: '1' }, undefined],
      ['insert', { id: '2', name: 'Grace', phone: '+15550002' }, { id: '2' }, undefined],
      ['update', { id: '1', name: 'Ada L.', phone: '+15550001' }, { id: '1' }, undefined],
      ['update', { id: '3', name: 'Grace', phone: '+15550002' }, { id: '3' }, { id: '2' }],
      // Under the default replica identity a delete carries only the key.
      ['delete', { id: '1' }, { id: '1' }, undefined],
    ]);
    // The multi-row INSERT is one transaction: one commit LSN, and the other statements come later.
    expect(changes[0]!.commitLsn).toBe(changes[1]!.commitLsn);
    const lsns = changes.slice(1).map((c) => c.commitLsn);
    expect([...lsns].sort((a, b) => (a < b ? -1 : 1))).toEqual(lsns);
    expect(new Set(lsns).size).toBe(4);
    for (const lsn of lsns) expect(collector.commits).toContain(lsn);
    expect(collector.violations).toEqual([]);
    expect(await counterValue(fixture.metrics, 'verbose_sync_changes_received_total')).toBeGreaterThanOrEqual(
      5,
    );
  });

  it('under REPLICA IDENTITY FULL, a delete carries the whole old row and the key is the primary key', async () => {
    await db.query(`INSERT INTO full_people VALUES (1, 'Linus', '+15550003')`);
    await db.query(`UPDATE full_people SET phone = '+15550004' WHERE id = 1`);
    await db.query(`DELETE FROM full_people WHERE id = 1`);
    const changes = await waitFor(
      () => collector.rows('public.full_people').length === 3 && collector.rows('public.full_people'),
    );
    expect(changes.map((c) => [c.op, c.row, c.key, c.oldKey])).toEqual([
      ['insert', { id: 1, name: 'Linus', phone: '+15550003' }, { id: 1 }, undefined],
      ['update', { id: 1, name: 'Linus', phone: '+15550004' }, { id: 1 }, undefined],
      ['delete', { id: 1, name: 'Linus', phone: '+15550004' }, { id: 1 }, undefined],
    ]);
  });

  it('delivers one truncate change per truncated table, with no row and no key', async () => {
    await db.query(`INSERT INTO bulk VALUES (0, 'x')`);
    await db.query(`TRUNCATE bulk, evolving`);
    const truncates = await waitFor(() => {
      const found = collector.committed.filter((c) => c.op === 'truncate');
      return found.length === 2 && found;
    });
    expect(truncates.map((c) => [c.table, c.row, c.key])).toEqual(
      expect.arrayContaining([
        ['public.bulk', null, {}],
        ['public.evolving', null, {}],
      ]),
    );
    expect(truncates[0]!.commitLsn).toBe(truncates[1]!.commitLsn);
  });

  it('delivers a 100,000-row transaction whole, in order, with one commit LSN, then its commit', async () => {
    const before = collector.rows('public.bulk').length;
    await db.query(`INSERT INTO bulk SELECT g, 'row ' || g FROM generate_series(1, 100000) g`);
    const rows = await waitFor(
      () => {
        const all = collector.rows('public.bulk');
        return all.length === before + 100_000 && all.slice(before);
      },
      { timeoutMs: 60_000, what: '100,000 rows' },
    );
    expect(rows.every((c, i) => c.op === 'insert' && c.row?.id === i + 1)).toBe(true);
    expect(rows[99_999]!.row).toEqual({ id: 100000, name: 'row 100000' });
    const lsn = rows[0]!.commitLsn;
    expect(rows.every((c) => c.commitLsn === lsn)).toBe(true);
    // The Collector only moves changes to `committed` in commit(lsn) and checks they carry that lsn.
    expect(collector.commits).toContain(lsn);
    expect(collector.pending).toEqual([]);
    expect(collector.violations).toEqual([]);
  }, 90_000);

  it('sends an unchanged TOASTed column as UNCHANGED, never null', async () => {
    const body = Array.from({ length: 3000 }, (_, i) => `${i}:${(i * 7919) % 10007}`).join(' ');
    await db.query(`INSERT INTO docs VALUES (1, 'first', $1)`, [body]);
    await db.query(`UPDATE docs SET title = 'second' WHERE id = 1`);
    await db.query(`UPDATE docs SET body = NULL WHERE id = 1`);
    const changes = await waitFor(
      () => collector.rows('public.docs').length === 3 && collector.rows('public.docs'),
    );
    expect(changes[0]!.row).toEqual({ id: 1, title: 'first', body });
    expect(changes[1]!.row).toEqual({ id: 1, title: 'second', body: UNCHANGED });
    expect(changes[2]!.row).toEqual({ id: 1, title: 'second', body: null });
  });

  it('keeps bigint, numeric, timestamps, json and arrays exact', async () => {
    await db.query(`
      INSERT INTO vals VALUES (
        1, 9007199254740993, 12345678901234567890.123456789, '2024-03-17 10:11:12.123456+05:30',
        '2024-03-17 10:11:12.5', '2024-02-29', '{"a": [1, "two", null], "b": {"c": true}}', '[1, 2.5]',
        ARRAY['plain', 'with space', 'quote"d', 'back\\slash', NULL, 'NULL'], ARRAY[9007199254740993, -1],
        true, 0.1, -32768, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', ARRAY['sad', 'happy']::mood[], 7, NULL)`);
    const [change] = await waitFor(
      () => collector.rows('public.vals').length === 1 && collector.rows('public.vals'),
    );
    expect(change!.row).toEqual({
      id: 1,
      big: '9007199254740993',
      amount: '12345678901234567890.123456789',
      at: '2024-03-17T04:41:12.123456Z',
      local: '2024-03-17T10:11:12.5',
      day: '2024-02-29',
      doc: { a: [1, 'two', null], b: { c: true } },
      js: [1, 2.5],
      tags: ['plain', 'with space', 'quote"d', 'back\\slash', null, 'NULL'],
      nums: ['9007199254740993', '-1'],
      flag: true,
      ratio: 0.1,
      small: -32768,
      uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      feeling: 'happy',
      feelings: ['sad', 'happy'],
      count: 7,
      nothing: null,
    });
  });

  it('picks up a column added while streaming, without a restart', async () => {
    await db.query(`INSERT INTO evolving VALUES (1, 'before')`);
    await db.query(`ALTER TABLE evolving ADD COLUMN phone text`);
    await db.query(`INSERT INTO evolving VALUES (2, 'after', '+15550005')`);
    const changes = await waitFor(() => {
      const rows = collector.rows('public.evolving').filter((c) => c.op === 'insert');
      return rows.length === 2 && rows;
    });
    expect(changes.map((c) => c.row)).toEqual([
      { id: 1, name: 'before' },
      { id: 2, name: 'after', phone: '+15550005' },
    ]);
  });

  it('streams quoted camelCase tables and other schemas under their exact names', async () => {
    await db.query(`INSERT INTO "Person" VALUES (1, 'Ada', '+15550006')`);
    await db.query(`INSERT INTO crm.accounts VALUES (1, 'Acme')`);
    const [person] = await waitFor(
      () => collector.rows('public.Person').length === 1 && collector.rows('public.Person'),
    );
    expect(person!.row).toEqual({ id: 1, nameFirstName: 'Ada', phoneNumber: '+15550006' });
    await waitFor(() => collector.rows('crm.accounts').length === 1);
  });

  it('passes logical messages on with their position; a standalone one also closes its position', async () => {
    const { rows } = await db.query<{ lsn: string }>(
      `SELECT pg_logical_emit_message(false, 'resync_low', 'chunk 1')::text AS lsn`,
    );
    await db.query(`BEGIN; INSERT INTO people VALUES (10, 'Tx', NULL);
      SELECT pg_logical_emit_message(true, 'resync_tx', '{"x":1}'); COMMIT;`);
    await waitFor(() => collector.messages.length === 2);
    const [standalone, transactional] = collector.messages;
    expect(standalone).toMatchObject({ prefix: 'resync_low', content: 'chunk 1', transactional: false });
    expect(transactional).toMatchObject({ prefix: 'resync_tx', content: '{"x":1}', transactional: true });
    expect(standalone!.lsn).toBeGreaterThan(0n);
    // Its own position is handed to commit(): nothing older is pending once it is delivered.
    expect(collector.commits).toContain(standalone!.lsn);
    expect(rows[0]!.lsn).toBeTruthy();
    await waitFor(() => collector.rows('public.people').some((c) => c.key.id === '10'));
  });

  it('never closes a transaction whose commit record directly follows a standalone message', async () => {
    // WAL: insert, message, commit. The commit record starts where the message record ends, so the
    // transaction's commit LSN equals the message's end: closing that would acknowledge the transaction too.
    await db.query(`BEGIN; INSERT INTO people VALUES (11, 'Right after', NULL);
      SELECT pg_logical_emit_message(false, 'resync_high', 'chunk 2'); COMMIT;`);
    const [change] = await waitFor(
      () =>
        collector.rows('public.people').filter((c) => c.key.id === '11').length === 1 &&
        collector.rows('public.people').filter((c) => c.key.id === '11'),
    );
    const message = collector.messages.find((m) => m.prefix === 'resync_high');
    expect(message!.lsn).toBeLessThan(change!.commitLsn);
    expect(collector.commits.filter((lsn) => lsn >= message!.lsn && lsn < change!.commitLsn)).toEqual([
      message!.lsn,
    ]);
  });
});
