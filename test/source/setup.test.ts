import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGED_PUBLICATION_COMMENT, prepareSource, SourceError } from '../../src/source/setup.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';

describe('prepareSource', () => {
  let db: TestDatabase;
  const roles: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('source_setup');
    await db.query(`
      CREATE TABLE "Person" (id int PRIMARY KEY, "nameFirstName" text, "phoneNumber" text,
                             "fullName" text GENERATED ALWAYS AS ("nameFirstName" || '!') STORED);
      CREATE TABLE person_contacts (tenant int, id int, phone text, PRIMARY KEY (tenant, id));
      CREATE TABLE keyless (phone text);
      CREATE TABLE by_index (code text NOT NULL, phone text);
      CREATE UNIQUE INDEX by_index_code ON by_index (code);
      ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code;
      CREATE VIEW people_view AS SELECT * FROM "Person";
    `);
  });
  afterAll(async () => {
    for (const role of roles) await db.query(`DROP ROLE IF EXISTS ${role}`);
    await db?.drop();
  });

  const publishedTables = async (publication: string) =>
    (
      await db.query<{ name: string }>(
        `SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`,
        [publication],
      )
    ).rows.map((r) => r.name);

  it('creates a marked publication and a pgoutput slot, and reports keys and columns', async () => {
    const options = {
      url: db.url,
      slot: 'setup_main',
      publication: 'setup_main',
      tables: ['public.Person', 'public.person_contacts', 'public.by_index'],
    };
    const report = await prepareSource(options);
    expect(report.slotCreated).toBe(true);
    expect(report.publicationCreated).toBe(true);
    expect(report.publicationManaged).toBe(true);
    expect(report.slot).toMatchObject({ plugin: 'pgoutput', walStatus: 'reserved', activePid: null });
    expect(report.slot.confirmedFlushLsn).toBeGreaterThan(0n);
    expect(report.keyColumns).toEqual(
      new Map([
        ['public.Person', ['id']],
        ['public.person_contacts', ['tenant', 'id']],
        ['public.by_index', ['code']],
      ]),
    );
    // Generated columns are not replicated, so they are not offered to mappings.
    expect(report.columns.get('public.Person')).toEqual(['id', 'nameFirstName', 'phoneNumber']);
    expect(await publishedTables('setup_main')).toEqual([
      'public.Person',
      'public.by_index',
      'public.person_contacts',
    ]);
    const { rows } = await db.query(`SELECT obj_description(oid, 'pg_publication') AS c FROM pg_publication
      WHERE pubname = 'setup_main'`);
    expect(rows[0]!.c).toBe(MANAGED_PUBLICATION_COMMENT);

    // Running again changes nothing.
    const again = await prepareSource(options);
    expect(again).toMatchObject({ slotCreated: false, publicationCreated: false, publicationAdded: [] });
    expect(again.slot.confirmedFlushLsn).toBe(report.slot.confirmedFlushLsn);
  });

  it('keeps its own publication equal to the mapped tables', async () => {
    await prepareSource({
      url: db.url,
      slot: 'setup_alter',
      publication: 'setup_alter',
      tables: ['public.Person'],
    });
    const report = await prepareSource({
      url: db.url,
      slot: 'setup_alter',
      publication: 'setup_alter',
      tables: ['public.person_contacts'],
    });
    expect(report.publicationAdded).toEqual(['public.person_contacts']);
    expect(report.publicationRemoved).toEqual(['public.Person']);
    expect(await publishedTables('setup_alter')).toEqual(['public.person_contacts']);
  });

  it('names a missing table and suggests close names', async () => {
    const attempt = prepareSource({
      url: db.url,
      slot: 'setup_missing',
      publication: 'setup_missing',
      tables: ['public.person', 'public.person_contact', 'public.people_view'],
    });
    await expect(attempt).rejects.toBeInstanceOf(SourceError);
    const message = await attempt.catch((e: Error) => e.message);
    expect(message).toContain('Table public.person does not exist; did you mean public.Person?');
    expect(message).toContain(
      'Table public.person_contact does not exist; did you mean public.person_contacts',
    );
    expect(message).toContain('public.people_view is a view');
    // Nothing was created for a configuration that cannot work.
    const { rows } = await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'setup_missing'`);
    expect(rows).toEqual([]);
  });

  it('refuses a table without primary key or replica identity, and accepts it with REPLICA IDENTITY FULL', async () => {
    const options = {
      url: db.url,
      slot: 'setup_keyless',
      publication: 'setup_keyless',
      tables: ['public.keyless'],
    };
    await expect(prepareSource(options)).rejects.toThrow(
      /Table public\.keyless has no primary key.*Add a primary key, or run: ALTER TABLE "public"\."keyless" REPLICA IDENTITY FULL;/,
    );
    await db.query('ALTER TABLE keyless REPLICA IDENTITY FULL');
    const report = await prepareSource(options);
    expect(report.keyColumns.get('public.keyless')).toEqual(['phone']);
  });

  it('refuses a table with REPLICA IDENTITY NOTHING, whose updates PostgreSQL would refuse once published', async () => {
    await db.query(`CREATE TABLE no_identity (id int PRIMARY KEY, phone text);
      ALTER TABLE no_identity REPLICA IDENTITY NOTHING`);
    const options = {
      url: db.url,
      slot: 'setup_nothing',
      publication: 'setup_nothing',
      tables: ['public.no_identity'],
    };
    await expect(prepareSource(options)).rejects.toThrow(
      /Table public\.no_identity has REPLICA IDENTITY NOTHING.*Run: ALTER TABLE "public"\."no_identity" REPLICA IDENTITY DEFAULT;/,
    );
    // Nothing was published or created: the CRM's own updates of that table still work.
    expect(await publishedTables('setup_nothing')).toEqual([]);
    await db.query(`INSERT INTO no_identity VALUES (1, '+12125550101'); UPDATE no_identity SET phone = NULL`);
  });

  it('never alters a publication it did not create, and says how to add the missing tables', async () => {
    await db.query('CREATE PUBLICATION theirs FOR TABLE "Person"');
    const options = {
      url: db.url,
      slot: 'setup_theirs',
      publication: 'theirs',
      tables: ['public.Person', 'public.person_contacts'],
    };
    await expect(prepareSource(options)).rejects.toThrow(
      'Publication "theirs" was not created by verbose-sync and does not include public.person_contacts. ' +
        'Run: ALTER PUBLICATION "theirs" ADD TABLE "public"."person_contacts";',
    );
    expect(await publishedTables('theirs')).toEqual(['public.Person']);

    await db.query('ALTER PUBLICATION theirs ADD TABLE person_contacts');
    const report = await prepareSource(options);
    expect(report).toMatchObject({ publicationManaged: false, publicationCreated: false });
    expect(await publishedTables('theirs')).toEqual(['public.Person', 'public.person_contacts']);
  });

  it('refuses a role that may not replicate, saying how to allow it', async () => {
    const role = `no_repl_${db.name.slice(-8)}`;
    roles.push(role);
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'secret'`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'secret';
    await expect(
      prepareSource({
        url: url.toString(),
        slot: 'setup_role',
        publication: 'setup_role',
        tables: ['public.Person'],
      }),
    ).rejects.toThrow(
      `Role "${role}" may not use replication. As a superuser, run: ALTER ROLE "${role}" REPLICATION;`,
    );
  });

  it('refuses a slot of the same name made for another plugin', async () => {
    await db.query(`SELECT pg_create_logical_replication_slot('setup_other', 'test_decoding')`);
    await expect(
      prepareSource({
        url: db.url,
        slot: 'setup_other',
        publication: 'setup_other',
        tables: ['public.Person'],
      }),
    ).rejects.toThrow(
      /Replication slot "setup_other" uses the test_decoding plugin.*pg_drop_replication_slot/,
    );
  });
});
