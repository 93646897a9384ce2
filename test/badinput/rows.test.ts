import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { MAX_VALUE_LENGTH } from '../../src/mapping/text.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';
import { readRejects } from './support.js';

/**
 * Rows a CRM really holds, through the real daemon against the simulator: each becomes a contact with clean
 * fields or a line in rejects.jsonl with a specific reason; the daemon keeps running and loses no good row.
 */

const SCHEMA = `
  CREATE TABLE people (id bigserial PRIMARY KEY, name text, mobile text, active boolean DEFAULT true);
  CREATE TABLE json_people (id bigserial PRIMARY KEY, name text, contact jsonb);
  CREATE TABLE numbered_people (id bigserial PRIMARY KEY, name text, phone bigint);`;

const MAPPINGS = `
mappings:
  - table: public.people
    where: { active: true }
    list: CRM people
    fields:
      phone: mobile
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }
      source: { value: crm }
  - table: public.json_people
    list: CRM people
    fields:
      phone: contact
      first_name: name
  - table: public.numbered_people
    list: CRM people
    fields:
      phone: phone
      first_name: name`;

const HUGE_WORD = 'x'.repeat(1024 * 1024);
/** An e with a combining acute accent (two code points, one letter). */
const E_ACUTE = 'e\u0301';

interface Person {
  name: string | null;
  mobile: string | null;
  active?: boolean;
}

describe('rows that are hard to turn into contacts', () => {
  let p: Pipeline;
  let daemon: Daemon;

  async function insertPeople(people: Person[]): Promise<string[]> {
    const { rows } = await p.db.query<{ id: string }>(
      `INSERT INTO people (name, mobile, active)
         SELECT name, mobile, coalesce(active, true)
           FROM jsonb_to_recordset($1::jsonb) AS r(name text, mobile text, active boolean)
         RETURNING id::text`,
      [JSON.stringify(people)],
    );
    return rows.map((row) => row.id);
  }

  const contact = (phone: string) => p.simulator.store.contact(phone);
  const rejectOf = async (table: string, id: string) =>
    (await readRejects(p.stateDir)).filter((r) => r.table === table && r.key.id === id);

  beforeAll(async () => {
    p = await createPipeline('badinput_rows', MAPPINGS, SCHEMA);
    daemon = await p.start();
  });
  afterAll(() => p?.close());

  it('sends the good people between the bad ones, with clean names, and sets each bad one aside with its reason', async () => {
    const good: Person[] = [
      { name: 'Ada Lovelace', mobile: '+1 212 555 0101' },
      { name: `Zed ${HUGE_WORD}`, mobile: '+1 212 555 0102' },
      { name: 'Gr\u0007ace\u001b Hop\u0008per\u007f\u009b', mobile: '+1 212 555 0103' },
      { name: 'Jean\nPaul\tSartre', mobile: '+1 212 555 0104' },
      { name: '🦄 Unicorn 👩‍👩‍👧 Family', mobile: '+1 212 555 0105' },
      { name: 'محمد عبد الله', mobile: '+1 212 555 0106' },
      { name: 'דוד בן-גוריון', mobile: '+1 212 555 0107' },
      { name: `Ren${E_ACUTE}e Z\u030Cizek`, mobile: '+1 212 555 0108' },
      { name: `Ann ${E_ACUTE.repeat(200)}`, mobile: '+1 212 555 0109' },
      { name: null, mobile: '+1 212 555 0110' },
      { name: 'Ext Ension', mobile: '+1 212 555 0111 ext. 45' },
      { name: 'Bob Last', mobile: '(212) 555-0112' },
    ];
    const bad: [Person, string][] = [
      [{ name: 'Call Me', mobile: 'call me' }, 'not a phone number'],
      [{ name: 'After Five', mobile: 'after 5pm' }, 'contains letters; write the number in digits'],
      [{ name: null, mobile: null }, 'empty phone (mobile)'],
      [
        { name: 'Two Numbers', mobile: '+1 212 555 0130 / +1 212 555 0131' },
        'several numbers in one field; keep one number per column',
      ],
      [{ name: 'Too Short', mobile: '555-0123' }, 'too short for US'],
      [{ name: 'Json Text', mobile: '{"mobile": "+12125550132"}' }, 'JSON, not a phone number'],
      [{ name: 'Huge Phone', mobile: '5'.repeat(1024 * 1024) }, 'too long'],
    ];
    // Good and bad alternate in one transaction, so a bad row cannot hold back the good ones behind it.
    const people = good.flatMap((person, i) => (bad[i] ? [person, bad[i][0]] : [person]));
    const ids = await insertPeople(people);
    const idOf = (person: Person) => ids[people.indexOf(person)]!;

    const phones = Array.from({ length: good.length }, (_, i) => `+12125550${101 + i}`);
    await eventually(() => phones.every((phone) => contact(phone)), 20_000, 'every good person');
    expect(contact('+12125550101')).toMatchObject({
      first_name: 'Ada',
      last_name: 'Lovelace',
      source: 'crm',
    });
    const huge = contact('+12125550102');
    expect(huge?.first_name).toBe('Zed');
    expect(huge?.last_name).toBe('x'.repeat(MAX_VALUE_LENGTH));
    expect(contact('+12125550103')).toMatchObject({ first_name: 'Grace', last_name: 'Hopper' });
    expect(contact('+12125550104')).toMatchObject({ first_name: 'Jean', last_name: 'Paul Sartre' });
    expect(contact('+12125550105')).toMatchObject({ first_name: '🦄', last_name: 'Unicorn 👩‍👩‍👧 Family' });
    expect(contact('+12125550106')).toMatchObject({ first_name: 'محمد', last_name: 'عبد الله' });
    expect(contact('+12125550107')).toMatchObject({ first_name: 'דוד', last_name: 'בן-גוריון' });
    expect(contact('+12125550108')).toMatchObject({ first_name: `Ren${E_ACUTE}e`, last_name: 'Z\u030Cizek' });
    // Cut to the length limit between letters, never between a letter and its accent.
    expect(contact('+12125550109')?.last_name).toBe(E_ACUTE.repeat(Math.floor(MAX_VALUE_LENGTH / 2)));
    const nameless = contact('+12125550110');
    expect(nameless).toMatchObject({ source: 'crm' });
    expect(nameless?.first_name ?? null).toBeNull();
    expect(contact('+12125550111')).toMatchObject({ first_name: 'Ext' });

    await eventually(async () => (await readRejects(p.stateDir)).length >= bad.length, 20_000, 'the rejects');
    for (const [person, reason] of bad) {
      expect(await rejectOf('public.people', idOf(person))).toEqual([
        expect.objectContaining({
          stage: 'mapping',
          table: 'public.people',
          key: { id: idOf(person) },
          // As read, cut to the length limit: a whole document pasted into a phone column is not kept twice.
          phone: (person.mobile ?? '').slice(0, MAX_VALUE_LENGTH),
          reason,
        }),
      ]);
    }
    expect(p.simulator.store.size).toBe(good.length);
  });

  it('reads phones from json and bigint columns, and rejects JSON that is not a number', async () => {
    const { rows: json } = await p.db.query<{ id: string }>(
      `INSERT INTO json_people (name, contact) VALUES
         ('Json String', '"+12125550150"'), ('Json Object', '{"mobile": "+12125550151"}'),
         ('Json Number', '2125550152'), ('Json List', '["+12125550153"]'), ('Json Null', 'null')
       RETURNING id::text`,
    );
    const { rows: numbered } = await p.db.query<{ id: string }>(
      `INSERT INTO numbered_people (name, phone) VALUES
         ('Big Int', 12125550160), ('Ten Digits', 2125550161), ('Max Int', 9223372036854775807)
       RETURNING id::text`,
    );
    await eventually(
      () => ['+12125550150', '+12125550152', '+12125550160', '+12125550161'].every((phone) => contact(phone)),
      20_000,
      'the json and bigint phones',
    );
    expect(contact('+12125550150')).toMatchObject({ first_name: 'Json String' });
    expect(contact('+12125550160')).toMatchObject({ first_name: 'Big Int' });
    const expected: [string, string, string, string][] = [
      ['public.json_people', json[1]!.id, '{"mobile":"+12125550151"}', 'JSON, not a phone number'],
      ['public.json_people', json[3]!.id, '["+12125550153"]', 'JSON, not a phone number'],
      ['public.json_people', json[4]!.id, '', 'empty phone (contact)'],
      ['public.numbered_people', numbered[2]!.id, '9223372036854775807', 'too long'],
    ];
    await eventually(
      async () =>
        (await Promise.all(expected.map(([t, id]) => rejectOf(t, id)))).every((r) => r.length === 1),
      20_000,
      'the json and bigint rejects',
    );
    for (const [table, id, phone, reason] of expected) {
      expect(await rejectOf(table, id)).toEqual([expect.objectContaining({ table, phone, reason })]);
    }
  });

  it('keeps the reject of a phone fixed later, and sends the contact once it is valid', async () => {
    const [id] = await insertPeople([{ name: 'Later Fixed', mobile: 'ask reception' }]);
    await eventually(async () => (await rejectOf('public.people', id!)).length === 1, 20_000, 'the reject');
    await p.db.query(`UPDATE people SET mobile = '+1 212 555 0140' WHERE id = $1`, [id]);
    await eventually(() => contact('+12125550140'), 20_000, 'the fixed contact');
    expect(contact('+12125550140')).toMatchObject({ first_name: 'Later', last_name: 'Fixed' });
    expect(await rejectOf('public.people', id!)).toEqual([
      expect.objectContaining({
        phone: 'ask reception',
        reason: 'not a phone number',
      }),
    ]);
  });

  it('neither sends nor rejects a row that never matches where, and goes on past it', async () => {
    const [hidden] = await insertPeople([{ name: 'Not Active', mobile: '+1 212 555 0170', active: false }]);
    await p.db.query(`UPDATE people SET name = 'Still Not Active' WHERE id = $1`, [hidden]);
    const [after] = await insertPeople([{ name: 'After Hidden', mobile: '+1 212 555 0171' }]);
    await eventually(() => contact('+12125550171'), 20_000, 'the row after the hidden one');
    expect(contact('+12125550170')).toBeUndefined();
    expect(await rejectOf('public.people', hidden!)).toEqual([]);
    expect(after).toBeDefined();
  });

  it('acknowledges past every bad row: the slot moves on and the daemon still runs', async () => {
    const { rows } = await p.db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
    await eventually(
      async () => {
        const { rows: slot } = await p.db.query<{ caught_up: boolean }>(
          `SELECT confirmed_flush_lsn >= $2::pg_lsn AS caught_up FROM pg_replication_slots WHERE slot_name = $1`,
          [p.db.name, rows[0]!.lsn],
        );
        return slot[0]?.caught_up === true;
      },
      20_000,
      'the slot past the bad rows',
    );
    expect(daemon.readiness().ok).toBe(true);
  });
});
