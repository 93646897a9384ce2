/** The CRM table the resync tests load: people with a mobile phone, mapped to one Verbose list. */
export const PEOPLE_SCHEMA = `
  CREATE TABLE people (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    mobile text NOT NULL,
    active boolean NOT NULL DEFAULT true
  );`;

export const PEOPLE_MAPPINGS = `
mappings:
  - table: public.people
    where: { active: true }
    list: CRM people
    fields:
      phone: mobile
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }
      source: { value: crm }`;

/**
 * A valid, distinct US mobile per id, as SQL: +1 212 5NN NNNN. The exchanges 520…620 hold a million ids and
 * none is an N11 code, which libphonenumber would refuse.
 */
export const phoneOfId = (id: string) =>
  `'+1212' || (520 + ${id} / 10000)::text || lpad((${id} % 10000)::text, 4, '0')`;

/** `count` people, ids 1…count, each with its own phone; one multi-row INSERT. */
export function insertPeople(count: number, from = 1): string {
  return `INSERT INTO people (id, name, mobile)
          SELECT g, 'Person ' || g, ${phoneOfId('g')} FROM generate_series(${from}, ${from + count - 1}) g;
          SELECT setval('people_id_seq', (SELECT max(id) FROM people))`;
}
