import type pg from 'pg';
import type { PeopleFactory, Person } from './people.js';

/** An Odoo-like partner table: people and companies, archived ones, a mobile and a landline column. */
export const SAMPLE_SCHEMA = `
CREATE TABLE res_partner (
  id           serial PRIMARY KEY,
  name         text NOT NULL,
  email        text,
  phone        text,
  mobile       text,
  is_company   boolean NOT NULL DEFAULT false,
  active       boolean NOT NULL DEFAULT true,
  type         text NOT NULL DEFAULT 'contact',
  country_code text,
  city         text,
  write_date   timestamptz NOT NULL DEFAULT now()
)`;

/** What the sample holds, for the demo's opening lines. */
export interface SampleCrm {
  people: number;
  companies: number;
  archived: number;
  /** Rows whose only phone cannot be a phone number: they are set aside as rejects. */
  invalidPhones: number;
  /** Ids of people with a mistyped mobile, and the number they meant: the live changes fix them. */
  typos: { id: number; name: string; meant: string }[];
  /** Ids of the people who become contacts (active, not companies, with a valid phone). */
  contactIds: number[];
}

const COMPANIES = [
  'Boulangerie Durand SARL',
  'Acme Logistics Inc.',
  'Müller & Söhne GmbH',
  'Café del Mar S.L.',
  'Pasticceria Rossi',
  'Thames Valley Plumbing Ltd',
  'Northwind Traders',
  'Atelier Lefèvre',
];

/** Phones that are not numbers at all: they stay rejected. */
const HOPELESS = ['n/a', 'ask reception', '12', '0000000000', '+33 6 12 34 56 78 / +33 6 98 76 54 32'];

/** Loads `people` people (plus companies, archived partners and bad phones) into res_partner. */
export async function loadSampleCrm(
  sql: pg.Client,
  people: number,
  factory: PeopleFactory,
): Promise<SampleCrm> {
  await sql.query(SAMPLE_SCHEMA);
  const rows: (Person & { isCompany: boolean; active: boolean })[] = [];
  const typoRows: { index: number; meant: string }[] = [];
  for (let i = 0; i < people; i++) {
    const person = factory.person();
    rows.push({ ...person, isCompany: false, active: true });
    // One in thirty has a mobile cut short while typing it.
    if (person.mobile && i % 30 === 7) {
      typoRows.push({ index: rows.length - 1, meant: person.mobile });
      rows[rows.length - 1]!.mobile = person.mobile.slice(0, -4).trim();
      rows[rows.length - 1]!.phone = null;
    }
  }
  for (const phone of HOPELESS) {
    rows.push({ ...factory.person(), mobile: phone, phone: null, isCompany: false, active: true });
  }
  for (const name of COMPANIES) {
    const person = factory.person();
    rows.push({ ...person, name, email: `contact@${slug(name)}.example`, isCompany: true, active: true });
  }
  const archived = Math.max(1, Math.round(people / 20));
  for (let i = 0; i < archived; i++) rows.push({ ...factory.person(), isCompany: false, active: false });

  const ids = await insertPartners(sql, rows);
  return {
    people: people + HOPELESS.length,
    companies: COMPANIES.length,
    archived,
    invalidPhones: HOPELESS.length + typoRows.length,
    typos: typoRows.map(({ index, meant }) => ({ id: ids[index]!, name: rows[index]!.name, meant })),
    contactIds: ids.slice(0, people).filter((_, index) => !typoRows.some((typo) => typo.index === index)),
  };
}

async function insertPartners(
  sql: pg.Client,
  rows: (Person & { isCompany: boolean; active: boolean })[],
): Promise<number[]> {
  const columns = ['name', 'email', 'phone', 'mobile', 'is_company', 'active', 'country_code', 'city'];
  const values: unknown[] = [];
  const tuples = rows.map((row, r) => {
    values.push(row.name, row.email, row.phone, row.mobile, row.isCompany, row.active, row.country, row.city);
    return `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`;
  });
  const result = await sql.query<{ id: number }>(
    `INSERT INTO res_partner (${columns.join(', ')}) VALUES ${tuples.join(', ')} RETURNING id`,
    values,
  );
  return result.rows.map((row) => row.id);
}

function slug(name: string): string {
  return name
    .normalize('NFD')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}
