import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../src/domain.js';
import { keyString } from '../../src/resync/keyString.js';
import { KeysetReader, type TableShape } from '../../src/resync/keysetReader.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { REPLICATION_SESSION } from './session.js';

describe('KeysetReader', () => {
  let db: TestDatabase;
  let session: pg.Client;
  let reader: KeysetReader;

  beforeAll(async () => {
    db = await createTestDatabase('keyset_reader');
    session = new pg.Client({ connectionString: db.url, options: REPLICATION_SESSION });
    await session.connect();
    reader = new KeysetReader(session);
    await db.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN positive AS int CHECK (VALUE > 0);
      CREATE TABLE ints (id int PRIMARY KEY, name text);
      INSERT INTO ints SELECT g, 'n' || g FROM generate_series(1, 25) g;
      CREATE TABLE bigs (id bigint PRIMARY KEY);
      INSERT INTO bigs VALUES (9007199254740993), (1), (-9223372036854775808), (9223372036854775807);
      CREATE TABLE texts (code text COLLATE "C" PRIMARY KEY);
      INSERT INTO texts VALUES ('b'), ('B'), ('a'), ('A'), ('ab'), (''), ('é');
      CREATE TABLE pairs (tenant int, code text, PRIMARY KEY (tenant, code));
      INSERT INTO pairs SELECT t, c FROM generate_series(1, 3) t, unnest(ARRAY['x', 'y', 'z']) c;
      CREATE TABLE uuids (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int);
      INSERT INTO uuids (n) SELECT g FROM generate_series(1, 20) g;
      CREATE TABLE moods (m mood PRIMARY KEY);
      INSERT INTO moods VALUES ('happy'), ('sad'), ('ok');
      CREATE SCHEMA "Crm";
      CREATE TABLE "Crm"."peopleX" ("personId" int PRIMARY KEY, "fullName" text);
      INSERT INTO "Crm"."peopleX" SELECT g, 'P' || g FROM generate_series(1, 5) g;
      CREATE TABLE empty (id int PRIMARY KEY);
      CREATE TABLE ident (id int PRIMARY KEY, email text NOT NULL);
      CREATE UNIQUE INDEX ident_email ON ident (email);
      ALTER TABLE ident REPLICA IDENTITY USING INDEX ident_email;
      INSERT INTO ident VALUES (1, 'z@x'), (2, 'a@x');
      CREATE TABLE nokey (id int);
      CREATE TABLE kinds (
        id int PRIMARY KEY, small smallint, big bigint, amount numeric, ratio float8, ok boolean,
        at timestamptz, local timestamp, day date, doc jsonb, raw json, u uuid, m mood, tags text[],
        moods mood[], score positive, gap interval
      );
      INSERT INTO kinds VALUES (
        1, 7, 9007199254740993, 12345678901234567890.10, 0.1, true,
        '2024-02-29 23:30:00.123456+02', '2024-02-29 23:30:00.5', '2024-02-29',
        '{"a": [1, "x", null]}', '{"b": 2}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ok', '{x,y}',
        '{sad,happy}', 5, '1 day 2 hours'
      );
    `);
  });
  afterAll(async () => {
    await session.end();
    await db.drop();
  });

  async function readAll(shape: TableShape, chunkSize: number): Promise<{ chunks: number; keys: Row[] }> {
    const keys: Row[] = [];
    let after: Row | null = null;
    let chunks = 0;
    for (;;) {
      const rows = await reader.readChunk(shape, { after, until: null }, chunkSize);
      chunks++;
      keys.push(...rows.map((r) => r.key));
      if (rows.length < chunkSize) return { chunks, keys };
      after = rows[rows.length - 1]!.key;
    }
  }

  it('reads a single integer key in order, in chunks, and resumes after a key', async () => {
    const shape = await reader.describe('public.ints');
    expect(shape.keyColumns).toEqual(['id']);
    const first = await reader.readChunk(shape, { after: null, until: null }, 10);
    expect(first.map((r) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => ({ id: i + 1 })));
    expect(first[0]).toEqual({
      table: 'public.ints',
      op: 'read',
      row: { id: 1, name: 'n1' },
      key: { id: 1 },
      commitLsn: 0n,
    });
    const resumed = await reader.readChunk(shape, { after: { id: 20 }, until: null }, 10);
    expect(resumed.map((r) => r.key.id)).toEqual([21, 22, 23, 24, 25]);
    const { chunks, keys } = await readAll(shape, 10);
    expect(chunks).toBe(3);
    expect(keys.map((k) => k.id)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });

  it('keeps bigint keys exact and orders them numerically', async () => {
    const shape = await reader.describe('public.bigs');
    const { keys } = await readAll(shape, 2);
    expect(keys.map((k) => k.id)).toEqual([
      '-9223372036854775808',
      '1',
      '9007199254740993',
      '9223372036854775807',
    ]);
    const after = await reader.readChunk(shape, { after: { id: '9007199254740992' }, until: null }, 10);
    expect(after.map((r) => r.key.id)).toEqual(['9007199254740993', '9223372036854775807']);
  });

  it('orders text keys by the column’s collation, resuming with it too', async () => {
    const shape = await reader.describe('public.texts');
    expect(shape.key[0]!.collation).toBe('pg_catalog."C"');
    const { keys } = await readAll(shape, 2);
    expect(keys.map((k) => k.code)).toEqual(['', 'A', 'B', 'a', 'ab', 'b', 'é']);
    const after = await reader.readChunk(shape, { after: { code: 'B' }, until: null }, 2);
    expect(after.map((r) => r.key.code)).toEqual(['a', 'ab']);
  });

  it('pages a composite key (int, text) with a row comparison', async () => {
    const shape = await reader.describe('public.pairs');
    expect(shape.keyColumns).toEqual(['tenant', 'code']);
    const { keys } = await readAll(shape, 4);
    expect(keys.map((k) => String(k.tenant) + String(k.code))).toEqual([
      '1x',
      '1y',
      '1z',
      '2x',
      '2y',
      '2z',
      '3x',
      '3y',
      '3z',
    ]);
    const after = await reader.readChunk(shape, { after: { tenant: 2, code: 'y' }, until: null }, 3);
    expect(after.map((r) => r.key)).toEqual([
      { tenant: 2, code: 'z' },
      { tenant: 3, code: 'x' },
      { tenant: 3, code: 'y' },
    ]);
  });

  it('pages UUID keys in UUID order', async () => {
    const shape = await reader.describe('public.uuids');
    const { rows } = await db.query<{ id: string }>(`SELECT id::text FROM uuids ORDER BY id`);
    const { keys, chunks } = await readAll(shape, 6);
    expect(chunks).toBe(4);
    expect(keys.map((k) => k.id)).toEqual(rows.map((r) => r.id));
    const after = await reader.readChunk(shape, { after: { id: rows[9]!.id }, until: null }, 3);
    expect(after.map((r) => r.key.id)).toEqual(rows.slice(10, 13).map((r) => r.id));
  });

  it('pages enum keys in the enum’s declared order', async () => {
    const shape = await reader.describe('public.moods');
    expect(shape.key[0]!.type).toBe('mood');
    const { keys } = await readAll(shape, 1);
    expect(keys.map((k) => k.m)).toEqual(['sad', 'ok', 'happy']);
    const after = await reader.readChunk(shape, { after: { m: 'sad' }, until: null }, 5);
    expect(after.map((r) => r.key.m)).toEqual(['ok', 'happy']);
  });

  it('stops at an upper key, the greatest key when the resync reached the table', async () => {
    const pairs = await reader.describe('public.pairs');
    const until = await reader.lastKey(pairs);
    expect(until).toEqual({ tenant: 3, code: 'z' });
    const bounded = await reader.readChunk(
      pairs,
      { after: { tenant: 1, code: 'z' }, until: { tenant: 2, code: 'y' } },
      10,
    );
    expect(bounded.map((r) => r.key)).toEqual([
      { tenant: 2, code: 'x' },
      { tenant: 2, code: 'y' },
    ]);
    const texts = await reader.describe('public.texts');
    expect(await reader.lastKey(texts)).toEqual({ code: 'é' });
    const upTo = await reader.readChunk(texts, { after: null, until: { code: 'B' } }, 10);
    expect(upTo.map((r) => r.key.code)).toEqual(['', 'A', 'B']);
    expect(await reader.lastKey(await reader.describe('public.empty'))).toBeNull();
  });

  it('reads camelCase columns of a camelCase table in a non-public schema', async () => {
    const shape = await reader.describe('Crm.peopleX');
    expect(shape).toMatchObject({ table: 'Crm.peopleX', sql: '"Crm"."peopleX"', keyColumns: ['personId'] });
    const rows = await reader.readChunk(shape, { after: { personId: 3 }, until: null }, 10);
    expect(rows.map((r) => r.row)).toEqual([
      { personId: 4, fullName: 'P4' },
      { personId: 5, fullName: 'P5' },
    ]);
    expect(rows[0]!.table).toBe('Crm.peopleX');
  });

  it('reads nothing from an empty table and estimates it as empty', async () => {
    const shape = await reader.describe('public.empty');
    expect(await reader.readChunk(shape, { after: null, until: null }, 10)).toEqual([]);
    expect(await reader.estimateRows(shape)).toBe(0);
  });

  it('estimates rows from the planner’s statistics, counting when there are none', async () => {
    const shape = await reader.describe('public.ints');
    expect(await reader.estimateRows(shape)).toBe(25); // never analyzed: reltuples = -1, so counted
    await db.query(`INSERT INTO ints SELECT g, 'n' FROM generate_series(26, 30) g`);
    await db.query(`ANALYZE ints`);
    expect(await reader.estimateRows(shape)).toBe(30);
    await db.query(`DELETE FROM ints WHERE id > 25`);
  });

  it('uses the replica identity index, which is what the stream’s keys are made of', async () => {
    const shape = await reader.describe('public.ident');
    expect(shape.keyColumns).toEqual(['email']);
    const rows = await reader.readChunk(shape, { after: null, until: null }, 10);
    expect(rows.map((r) => r.key)).toEqual([{ email: 'a@x' }, { email: 'z@x' }]);
  });

  it('takes key columns when given', async () => {
    const shape = await reader.describe('public.pairs', ['tenant', 'code']);
    expect(shape.key.map((k) => k.type)).toEqual(['integer', 'text']);
    await expect(reader.describe('public.pairs', ['nope'])).rejects.toThrow(/no column nope/);
  });

  it('explains a table without a key and a table that does not exist', async () => {
    await expect(reader.describe('public.nokey')).rejects.toThrow(
      /no primary key.*REPLICA IDENTITY USING INDEX/,
    );
    await expect(reader.describe('public.missing')).rejects.toThrow(/public\.missing does not exist/);
    await expect(reader.describe('crm.peoplex')).rejects.toThrow(/does not exist/);
  });

  it('decodes values like the stream: exact int8 and numeric, ISO timestamps, json, arrays, domains', async () => {
    const shape = await reader.describe('public.kinds');
    const [read] = await reader.readChunk(shape, { after: null, until: null }, 1);
    expect(read!.row).toEqual({
      id: 1,
      small: 7,
      big: '9007199254740993',
      amount: '12345678901234567890.10',
      ratio: 0.1,
      ok: true,
      at: '2024-02-29T21:30:00.123456Z',
      local: '2024-02-29T23:30:00.5',
      day: '2024-02-29',
      doc: { a: [1, 'x', null] },
      raw: { b: 2 },
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      m: 'ok',
      tags: ['x', 'y'],
      moods: ['sad', 'happy'],
      score: 5,
      gap: 'P1DT2H',
    });
  });

  it('gives keys that compare equal with the stream’s text-typed keys', async () => {
    const shape = await reader.describe('public.pairs');
    const [read] = await reader.readChunk(shape, { after: null, until: null }, 1);
    expect(keyString(read!.key, shape.keyColumns)).toBe(
      keyString({ code: 'x', tenant: '1' }, ['tenant', 'code']),
    );
  });
});
