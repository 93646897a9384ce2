import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import type { ContactChange, Row } from '../../src/domain.js';
import { PhoneCollisions } from '../../src/mapping/collisions.js';
import { Mapper, type MappingOutcome } from '../../src/mapping/mapper.js';
import { checkMappings, formatPreview, previewMappings } from '../../src/mapping/preview.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { configWithMappings, readyMapping } from './config.js';

/** Simplified but faithful copies of three CRMs' people tables, with rows like those found in the wild. */
const WORKSPACE = 'workspace_1wgvd1injqtife6y4rvfbu3h5';
const schema = `
CREATE TABLE res_country (id serial PRIMARY KEY, code varchar(2) NOT NULL, name jsonb NOT NULL);
CREATE TABLE res_partner (
  id serial PRIMARY KEY,
  name varchar,
  complete_name varchar,
  parent_id integer REFERENCES res_partner (id),
  type varchar DEFAULT 'contact',
  email varchar,
  phone varchar,
  mobile varchar,
  country_id integer REFERENCES res_country (id),
  active boolean DEFAULT true,
  is_company boolean DEFAULT false,
  create_date timestamp without time zone DEFAULT now(),
  write_date timestamp without time zone DEFAULT now()
);
CREATE VIEW res_partner_people AS SELECT * FROM res_partner WHERE NOT is_company;

CREATE SCHEMA ${WORKSPACE};
CREATE TABLE ${WORKSPACE}.person (
  "id" uuid PRIMARY KEY,
  "nameFirstName" varchar NOT NULL DEFAULT '',
  "nameLastName" varchar NOT NULL DEFAULT '',
  "emailsPrimaryEmail" varchar NOT NULL DEFAULT '',
  "emailsAdditionalEmails" jsonb,
  "phonesPrimaryPhoneNumber" varchar NOT NULL DEFAULT '',
  "phonesPrimaryPhoneCountryCode" varchar NOT NULL DEFAULT '',
  "phonesPrimaryPhoneCallingCode" varchar NOT NULL DEFAULT '',
  "phonesAdditionalPhones" jsonb,
  "jobTitle" varchar NOT NULL DEFAULT '',
  "position" double precision,
  "createdAt" timestamptz NOT NULL DEFAULT now(),
  "updatedAt" timestamptz NOT NULL DEFAULT now(),
  "deletedAt" timestamptz
);

CREATE TABLE contacts (
  id char(36) PRIMARY KEY,
  date_entered timestamp,
  date_modified timestamp,
  deleted smallint NOT NULL DEFAULT 0,
  salutation varchar(255),
  first_name varchar(100),
  last_name varchar(100),
  title varchar(100),
  do_not_call boolean DEFAULT false,
  phone_home varchar(100),
  phone_mobile varchar(100),
  phone_work varchar(100),
  phone_other varchar(100),
  phone_fax varchar(100),
  lead_source varchar(255),
  primary_address_country varchar(255),
  description text
);
CREATE SCHEMA legacy;
CREATE TABLE legacy.contacts (LIKE contacts INCLUDING ALL);
ALTER TABLE legacy.contacts ALTER COLUMN deleted DROP DEFAULT,
  ALTER COLUMN deleted TYPE boolean USING deleted = 1, ALTER COLUMN deleted SET DEFAULT false;
`;

const rows = `
INSERT INTO res_country (code, name) VALUES ('FR', '{"en_US": "France"}'), ('IN', '{"en_US": "India"}');
INSERT INTO res_partner (id, name, phone, mobile, country_id, active, is_company, type, parent_id) VALUES
  (1, 'Jean Dupont', NULL, '06 12 34 56 78', 1, true, false, 'contact', NULL),
  (2, 'Marie-Claire de La Tour', '+33 1 42 68 53 00', '', 1, true, false, 'contact', NULL),
  (3, 'ACME SARL', '01 42 68 53 00', NULL, 1, true, true, 'contact', NULL),
  (4, 'Ancien Client', NULL, '06 11 22 33 44', 1, false, false, 'contact', NULL),
  (5, 'Priya  Sharma', NULL, '+91 98765 43210', 2, true, false, 'contact', NULL),
  (6, 'Paul Martin', 'n/a', NULL, 1, true, false, 'contact', NULL),
  (7, 'John Smith', '0044 20 7946 0958', NULL, NULL, true, false, 'contact', NULL),
  (8, 'Jean Dupont', NULL, '+33 6 12 34 56 78', 1, true, false, 'invoice', 1);
SELECT setval('res_partner_id_seq', 8);

INSERT INTO ${WORKSPACE}.person ("id", "nameFirstName", "nameLastName", "phonesPrimaryPhoneNumber",
    "phonesPrimaryPhoneCountryCode", "phonesPrimaryPhoneCallingCode", "phonesAdditionalPhones", "deletedAt") VALUES
  ('00000000-0000-4000-8000-000000000001', 'Ada', 'Lovelace', '612345678', 'FR', '+33', '[]', NULL),
  ('00000000-0000-4000-8000-000000000002', 'Grace', 'Hopper', '20 7946 0958', '', '+44', NULL, NULL),
  ('00000000-0000-4000-8000-000000000003', 'Alan', 'Turing', '+44 7911 123456', 'US', '+1', NULL, NULL),
  ('00000000-0000-4000-8000-000000000004', 'Old', 'Record', '698765432', 'FR', '+33', NULL, now()),
  ('00000000-0000-4000-8000-000000000005', 'Linus', '', '', '', '', '[{"number": "612345678", "callingCode": "+33"}]', NULL);

INSERT INTO contacts (id, deleted, first_name, last_name, phone_mobile, phone_work, phone_home, do_not_call) VALUES
  ('c0000000-0000-0000-0000-000000000001', 0, 'Sally', 'Jones', NULL, '(212) 555-0142', '212.555.0199', false),
  ('c0000000-0000-0000-0000-000000000002', 0, 'Bob', E'O''Brien\\t', '', '+1 212-555-0123 ext. 45', NULL, NULL),
  ('c0000000-0000-0000-0000-000000000003', 1, 'Gone', 'Away', '(212) 555-0100', NULL, NULL, false),
  ('c0000000-0000-0000-0000-000000000004', 0, 'Flora', 'Shop', '1-800-FLOWERS', NULL, NULL, false);
INSERT INTO legacy.contacts SELECT * FROM (SELECT id, date_entered, date_modified, deleted = 1, salutation, first_name,
  last_name, title, do_not_call, phone_home, phone_mobile, phone_work, phone_other, phone_fax, lead_source,
  primary_address_country, description FROM contacts) AS c;
`;

const twentyYaml = () => readyMapping('twenty').replaceAll('workspace_REPLACE_ME', WORKSPACE);

function config(fragment: string, defaultCountry: string): Config {
  return configWithMappings(fragment, defaultCountry);
}

/** Maps every row of a table as a full resync would: RowChange objects with op `read`, keyed by `id`. */
async function mapTable(db: TestDatabase, cfg: Config, from: string): Promise<Map<string, MappingOutcome>> {
  const mapper = Mapper.fromConfig(cfg);
  const [table] = mapper.tables();
  const result = await db.query<Row>(`SELECT * FROM ${from} ORDER BY id`);
  const outcomes = new Map<string, MappingOutcome>();
  for (const raw of result.rows) {
    const row = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]),
    ) as Row;
    const [outcome] = mapper.map({
      table: table!,
      op: 'read',
      row,
      key: { id: row.id ?? null },
      commitLsn: 1n,
    });
    outcomes.set(String(row.id), outcome!);
  }
  return outcomes;
}

function summary(outcome: MappingOutcome | undefined): unknown {
  if (outcome === undefined) return undefined;
  if (outcome.kind === 'contact') return { phone: outcome.contact.phone, ...outcome.contact.fields };
  if (outcome.kind === 'rejected') return `rejected: ${outcome.rejection.reason}`;
  return `skipped: ${outcome.reason}`;
}

describe('ready-made mappings on real CRM tables', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('mapping_crm');
    await db.query(schema);
    await db.query(rows);
  });
  afterAll(() => db.drop());

  it('maps Odoo partners: people only, name split, mobile before phone', async () => {
    const outcomes = await mapTable(db, config(readyMapping('odoo'), 'FR'), 'res_partner');
    expect(Object.fromEntries([...outcomes].map(([id, o]) => [id, summary(o)]))).toEqual({
      1: { phone: '+33612345678', first_name: 'Jean', last_name: 'Dupont', source: 'odoo' },
      2: { phone: '+33142685300', first_name: 'Marie-Claire', last_name: 'de La Tour', source: 'odoo' },
      3: 'skipped: not_matching',
      4: 'skipped: not_matching',
      5: { phone: '+919876543210', first_name: 'Priya', last_name: 'Sharma', source: 'odoo' },
      6: 'rejected: not a phone number',
      7: { phone: '+442079460958', first_name: 'John', last_name: 'Smith', source: 'odoo' },
      8: { phone: '+33612345678', first_name: 'Jean', last_name: 'Dupont', source: 'odoo' },
    });
    const contact = outcomes.get('1');
    expect(contact?.kind === 'contact' && contact.contact).toMatchObject({
      target: { list: 'Odoo contacts' },
      origin: { table: 'public.res_partner', key: { id: 1 }, rawPhone: '06 12 34 56 78' },
      backfill: true,
    });
  });

  it('reports the Odoo invoice address that shares its person’s phone as a collision', async () => {
    const outcomes = await mapTable(db, config(readyMapping('odoo'), 'FR'), 'res_partner');
    const collisions = new PhoneCollisions(1_000);
    const found = [...outcomes.values()]
      .filter((o): o is { kind: 'contact'; mapping: number; contact: ContactChange } => o.kind === 'contact')
      .map((o) => collisions.observe(o.contact))
      .filter((c) => c !== undefined);
    expect(found).toEqual([
      {
        phone: '+33612345678',
        table: 'public.res_partner',
        tables: ['public.res_partner', 'public.res_partner'],
        keys: [{ id: 1 }, { id: 8 }],
        spellings: ['06 12 34 56 78', '+33 6 12 34 56 78'],
      },
    ]);
  });

  it('maps Twenty people from a workspace schema: ISO country, then calling code, then the default', async () => {
    const outcomes = await mapTable(db, config(twentyYaml(), 'US'), `${WORKSPACE}.person`);
    expect(Object.fromEntries([...outcomes].map(([id, o]) => [id.slice(-1), summary(o)]))).toEqual({
      1: { phone: '+33612345678', first_name: 'Ada', last_name: 'Lovelace', source: 'twenty' },
      2: { phone: '+442079460958', first_name: 'Grace', last_name: 'Hopper', source: 'twenty' },
      3: { phone: '+447911123456', first_name: 'Alan', last_name: 'Turing', source: 'twenty' },
      4: 'skipped: not_matching',
      5: 'rejected: empty phone (phonesPrimaryPhoneNumber)',
    });
  });

  it('shows why twenty.yaml uses phone_country rather than a calling-code template', async () => {
    const template = twentyYaml()
      .replace(/^ {4}phone_country:.*$/m, '')
      .replace(
        'phone: phonesPrimaryPhoneNumber',
        'phone: { template: "{phonesPrimaryPhoneCallingCode}{phonesPrimaryPhoneNumber}" }',
      );
    const outcomes = await mapTable(db, config(template, 'US'), `${WORKSPACE}.person`);
    expect(summary(outcomes.get('00000000-0000-4000-8000-000000000003'))).toBe(
      'rejected: several "+" signs; write the country code once',
    );
  });

  it('maps SuiteCRM contacts: mobile, then work, then home; deleted ones left out', async () => {
    const outcomes = await mapTable(db, config(readyMapping('suitecrm'), 'US'), 'contacts');
    expect(Object.fromEntries([...outcomes].map(([id, o]) => [id.slice(-1), summary(o)]))).toEqual({
      1: { phone: '+12125550142', first_name: 'Sally', last_name: 'Jones', source: 'suitecrm' },
      2: { phone: '+12125550123', first_name: 'Bob', last_name: "O'Brien", source: 'suitecrm' },
      3: 'skipped: not_matching',
      4: 'rejected: contains letters; write the number in digits',
    });
  });

  it('matches `deleted: 0` whether SuiteCRM’s deleted column is a smallint or a boolean', async () => {
    const fragment = readyMapping('suitecrm').replace('public.contacts', 'legacy.contacts');
    const outcomes = await mapTable(db, config(fragment, 'US'), 'legacy.contacts');
    expect([...outcomes.values()].map((o) => o.kind)).toEqual(['contact', 'contact', 'skipped', 'rejected']);
  });

  it('validate finds nothing wrong with the three ready-made mappings on their tables', async () => {
    for (const fragment of [readyMapping('odoo'), twentyYaml(), readyMapping('suitecrm')]) {
      const cfg = config(fragment, 'US');
      expect(await checkMappings(db.sql, Mapper.fromConfig(cfg), cfg.mappings)).toEqual([]);
    }
  });

  it('validate suggests the workspace schema when twenty.yaml is used unedited', async () => {
    const cfg = config(readyMapping('twenty'), 'US');
    const problems = await checkMappings(db.sql, Mapper.fromConfig(cfg), cfg.mappings);
    expect(problems).toEqual([
      {
        path: 'mappings[0].table',
        message: `table workspace_REPLACE_ME.person does not exist; did you mean "${WORKSPACE}.person"?`,
        suggestions: [`${WORKSPACE}.person`],
      },
    ]);
  });

  it('validate refuses a generated column, whose changes logical replication never sends', async () => {
    await db.sql.query(`CREATE TABLE IF NOT EXISTS generated_people (id int PRIMARY KEY, first text, last text,
      mobile text, full_name text GENERATED ALWAYS AS (first || ' ' || last) STORED)`);
    const cfg = config(
      `
mappings:
  - table: generated_people
    fields: { phone: mobile, first_name: full_name }
`,
      'US',
    );
    const problems = await checkMappings(db.sql, Mapper.fromConfig(cfg), cfg.mappings);
    expect(problems).toEqual([
      {
        path: 'mappings[0].fields.first_name',
        message: expect.stringMatching(
          /^column "full_name" of public\.generated_people is a generated column, which logical replication does not send/,
        ),
        suggestions: [],
      },
    ]);
  });

  it('validate names each unknown table and column with the closest existing names', async () => {
    const cfg = config(
      `
mappings:
  - table: public.res_partnr
    fields: { phone: mobile }
  - table: res_partner
    where: { activ: true, is_company: false }
    list: { column: segment, default: All }
    fields:
      phone: [mobile, phon]
      first_name: { template: "{nam}" }
  - table: ${WORKSPACE}.person
    phone_country: phonesPrimaryPhoneCountrycode
    fields:
      phone: phonesPrimaryPhoneNumber
      first_name: namefirstname
  - table: res_partner_people
    list: People
    fields: { phone: mobile }
`,
      'US',
    );
    const problems = await checkMappings(db.sql, Mapper.fromConfig(cfg), cfg.mappings);
    expect(problems.map((p) => [p.path, p.suggestions])).toEqual([
      ['mappings[0].table', ['public.res_partner']],
      ['mappings[1].fields.phone', ['phone']],
      ['mappings[1].fields.first_name', ['name']],
      ['mappings[1].where.activ', ['active']],
      ['mappings[1].list.column', []],
      ['mappings[2].fields.first_name', ['nameFirstName', 'nameLastName']],
      ['mappings[2].phone_country', ['phonesPrimaryPhoneCountryCode', 'phonesPrimaryPhoneCallingCode']],
      ['mappings[3].table', []],
    ]);
    expect(problems[1]?.message).toBe(
      'column "phon" does not exist in public.res_partner; did you mean "phone"?',
    );
    expect(problems[7]?.message).toMatch(
      /public\.res_partner_people is a view; logical replication publishes only tables/,
    );
  });

  it('previews the exact contacts, rejections and skips of a few real rows per table', async () => {
    const cfg = config(
      `${readyMapping('odoo')}
  - table: public.contacts
    where: { deleted: 0 }
    list_id: lst_suite
    fields:
      phone: [phone_mobile, phone_work, phone_home]
      first_name: { column: first_name, transform: upper }
  - table: public.missing_table
    fields: { phone: phone }
`,
      'FR',
    );
    const preview = await previewMappings(db.sql, Mapper.fromConfig(cfg), { rowsPerTable: 3 });
    expect(preview.tables.map((t) => [t.table, t.rows.length])).toEqual([
      ['public.res_partner', 3],
      ['public.contacts', 3],
      ['public.missing_table', 0],
    ]);
    expect(preview.tables[1]?.rows[0]?.key).toEqual({ id: 'c0000000-0000-0000-0000-000000000001' });
    expect(preview.tables[2]?.error).toMatch(/does not exist/);
    expect(formatPreview(preview).split('\n')).toEqual([
      'public.res_partner: 3 rows read',
      '  id=1 mappings[0] → +33612345678 list "Odoo contacts": first_name "Jean", last_name "Dupont", source "odoo"',
      '  id=2 mappings[0] → +33142685300 list "Odoo contacts": first_name "Marie-Claire", last_name "de La Tour", source "odoo"',
      '  id=3 mappings[0] skipped: does not match where',
      'public.contacts: 3 rows read',
      '  id=c0000000-0000-0000-0000-000000000001 mappings[1] rejected: too long for FR (phone "(212) 555-0142")',
      '  id=c0000000-0000-0000-0000-000000000002 mappings[1] → +12125550123 list_id "lst_suite": first_name "BOB"',
      '  id=c0000000-0000-0000-0000-000000000003 mappings[1] skipped: does not match where',
      `public.missing_table: cannot read (${preview.tables[2]?.error})`,
    ]);
  });
});
