import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Row, type RowChange, type RowOp, UNCHANGED } from '../../src/domain.js';
import { Mapper, type MappingOutcome } from '../../src/mapping/mapper.js';
import { configWithMappings } from './config.js';

const odoo = `
mappings:
  - table: res_partner
    where: { active: true, is_company: false }
    list: Odoo contacts
    fields:
      phone: [mobile, phone]
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }
      source: { value: odoo }
`;

function change(row: Row | null, op: RowOp = 'insert', table = 'public.res_partner'): RowChange {
  return { table, op, row, key: row && 'id' in row ? { id: row.id ?? null } : { id: 7 }, commitLsn: 0x1234n };
}

function partner(overrides: Row = {}): Row {
  return {
    id: 7,
    name: 'Jean Dupont',
    mobile: '06 12 34 56 78',
    phone: null,
    active: true,
    is_company: false,
    ...overrides,
  };
}

function mapperFor(yaml: string, defaultCountry = 'FR'): Mapper {
  return Mapper.fromConfig(configWithMappings(yaml, defaultCountry));
}

function only(outcomes: MappingOutcome[]): MappingOutcome {
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!;
}

describe('Mapper', () => {
  it('turns a CRM row into the contact Verbose will receive', () => {
    const outcome = only(mapperFor(odoo).map(change(partner())));
    expect(outcome).toEqual({
      kind: 'contact',
      mapping: 0,
      contact: {
        target: { list: 'Odoo contacts' },
        phone: '+33612345678',
        fields: { first_name: 'Jean', last_name: 'Dupont', source: 'odoo' },
        origin: { table: 'public.res_partner', key: { id: 7 }, rawPhone: '06 12 34 56 78' },
        commitLsn: 0x1234n,
        backfill: false,
      },
    });
  });

  it('marks rows read by a full resync as backfill', () => {
    const outcome = only(mapperFor(odoo).map(change(partner(), 'read')));
    expect(outcome.kind === 'contact' && outcome.contact.backfill).toBe(true);
  });

  it('falls back to the second phone column and leaves blank fields out instead of clearing them', () => {
    const outcome = only(
      mapperFor(odoo).map(change(partner({ mobile: ' ', phone: '+44 20 7946 0958', name: 'Cher' }))),
    );
    expect(outcome.kind === 'contact' && outcome.contact.phone).toBe('+442079460958');
    expect(outcome.kind === 'contact' && outcome.contact.fields).toEqual({
      first_name: 'Cher',
      source: 'odoo',
    });
  });

  it('sends "" for an empty field only when send_empty is set', () => {
    const mapper = mapperFor(`
mappings:
  - table: people
    fields:
      phone: tel
      last_name: { column: surname, send_empty: true }
      first_name: { column: given, default: Friend }
`);
    const outcome = only(
      mapper.map(change({ id: 1, tel: '+33612345678', surname: null, given: '' }, 'insert', 'public.people')),
    );
    expect(outcome.kind === 'contact' && outcome.contact.fields).toEqual({
      last_name: '',
      first_name: 'Friend',
    });
    expect(outcome.kind === 'contact' && outcome.contact.target).toEqual({});
  });

  it('leaves out a field whose column the server did not send (unchanged TOAST value)', () => {
    const outcome = only(mapperFor(odoo).map(change(partner({ name: UNCHANGED }), 'update')));
    expect(outcome.kind === 'contact' && outcome.contact.fields).toEqual({ source: 'odoo' });
  });

  it('rejects a row whose phone the server did not send, saying to set REPLICA IDENTITY FULL', () => {
    const outcome = only(mapperFor(odoo).map(change(partner({ mobile: UNCHANGED }), 'update')));
    expect(outcome.kind).toBe('rejected');
    expect(outcome.kind === 'rejected' && outcome.rejection.reason).toMatch(
      /ALTER TABLE public\.res_partner REPLICA IDENTITY FULL/,
    );
  });

  it('rejects a matching row whose phone is unusable, keeping the raw phone, key and reason', () => {
    const outcome = only(mapperFor(odoo).map(change(partner({ mobile: '06 12 34 56 78 / 06 98 76 54 32' }))));
    expect(outcome).toEqual({
      kind: 'rejected',
      mapping: 0,
      rejection: {
        origin: { table: 'public.res_partner', key: { id: 7 }, rawPhone: '06 12 34 56 78 / 06 98 76 54 32' },
        reason: 'several numbers in one field; keep one number per column',
        commitLsn: 0x1234n,
      },
    });
    const empty = only(mapperFor(odoo).map(change(partner({ mobile: null, phone: '' }))));
    expect(empty.kind === 'rejected' && empty.rejection.reason).toBe('empty phone (mobile, phone)');
  });

  it('skips rows that do not match where, deletes and truncates: nothing is sent for them', () => {
    const mapper = mapperFor(odoo);
    expect(only(mapper.map(change(partner({ is_company: true }))))).toEqual({
      kind: 'skipped',
      mapping: 0,
      reason: 'not_matching',
    });
    expect(only(mapper.map(change({ id: 7 }, 'delete')))).toMatchObject({
      kind: 'skipped',
      reason: 'delete',
    });
    expect(only(mapper.map(change(null, 'truncate')))).toMatchObject({ kind: 'skipped', reason: 'truncate' });
    expect(mapper.map(change(partner(), 'insert', 'public.res_users'))).toEqual([]);
  });

  it('gives one outcome per mapping when several mappings read one table', () => {
    const mapper = mapperFor(`
mappings:
  - table: public.contacts
    where: { kind: lead }
    list: Leads
    fields: { phone: phone }
  - table: contacts
    where: { kind: [lead, customer] }
    list_id: lst_123
    fields: { phone: phone }
`);
    const outcomes = mapper.map(
      change({ id: 1, kind: 'customer', phone: '+33612345678' }, 'insert', 'public.contacts'),
    );
    expect(outcomes.map((o) => [o.mapping, o.kind])).toEqual([
      [0, 'skipped'],
      [1, 'contact'],
    ]);
    expect(outcomes[1]?.kind === 'contact' && outcomes[1].contact.target).toEqual({ list_id: 'lst_123' });
    expect(mapper.tables()).toEqual(['public.contacts']);
  });

  it('takes the list from a column, with its default, and rejects when neither gives one', () => {
    const mapper = mapperFor(`
mappings:
  - table: contacts
    list: { column: segment, default: General }
    fields: { phone: phone }
  - table: leads
    list: { column: segment }
    fields: { phone: phone }
`);
    const target = (o: MappingOutcome) => (o.kind === 'contact' ? o.contact.target : o);
    const row = { id: 1, phone: '+33612345678', segment: ' VIP ' };
    expect(target(only(mapper.map(change(row, 'insert', 'public.contacts'))))).toEqual({ list: 'VIP' });
    expect(target(only(mapper.map(change({ ...row, segment: null }, 'insert', 'public.contacts'))))).toEqual({
      list: 'General',
    });
    const rejected = only(mapper.map(change({ ...row, segment: '' }, 'insert', 'public.leads')));
    expect(rejected.kind === 'rejected' && rejected.rejection.reason).toBe(
      'list column segment is empty and no default is given',
    );
  });

  it('reads national numbers in the row country (ISO or calling code), else in phone.default_country', () => {
    const mapper = mapperFor(
      `
mappings:
  - table: person
    phone_country: [countryCode, callingCode]
    fields: { phone: number }
`,
      'US',
    );
    const phoneOf = (row: Row) => {
      const o = only(mapper.map(change({ id: 1, ...row }, 'insert', 'public.person')));
      return o.kind === 'contact' ? o.contact.phone : o.kind === 'rejected' ? o.rejection.reason : o.reason;
    };
    expect(phoneOf({ number: '06 12 34 56 78', countryCode: 'FR', callingCode: '+33' })).toBe('+33612345678');
    expect(phoneOf({ number: '612345678', countryCode: '', callingCode: '+33' })).toBe('+33612345678');
    expect(phoneOf({ number: '(212) 555-0123', countryCode: '', callingCode: '' })).toBe('+12125550123');
    expect(phoneOf({ number: '+44 20 7946 0958', countryCode: 'FR', callingCode: '+33' })).toBe(
      '+442079460958',
    );
    expect(phoneOf({ number: '06 12 34 56 78', countryCode: 'France', callingCode: null })).toMatch(
      /^unknown phone country "France"/,
    );
  });

  it('lists the mapped tables and the columns each one needs', () => {
    const mapper = mapperFor(`
mappings:
  - table: res_partner
    where: { active: true }
    list: { column: segment }
    phone_country: country_code
    fields:
      phone: [mobile, phone]
      first_name: { template: "{firstName} {lastName}" }
      source: { value: odoo }
  - table: public.res_partner
    where: { is_company: false }
    fields: { phone: mobile }
  - table: crm.lead
    fields: { phone: phone }
`);
    expect(mapper.tables()).toEqual(['public.res_partner', 'crm.lead']);
    expect(mapper.columnsOf('public.res_partner').sort()).toEqual(
      ['active', 'country_code', 'firstName', 'is_company', 'lastName', 'mobile', 'phone', 'segment'].sort(),
    );
    expect(mapper.columnsOf('res_partner')).toEqual(mapper.columnsOf('public.res_partner'));
    expect(mapper.columnsOf('public.unknown')).toEqual([]);
  });

  it('never throws, and every contact has an E.164 phone and only non-empty fields', () => {
    const mapper = mapperFor(odoo, 'GB');
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('020 7946 0958', '+33 6 12 34 56 78', '07911 123456', ' ', null, UNCHANGED),
      fc.integer(),
      fc.boolean(),
    );
    fc.assert(
      fc.property(
        fc.record({ name: value, mobile: value, phone: value, active: value, is_company: value }),
        fc.constantFrom<RowOp>('insert', 'update', 'read', 'delete'),
        (columns, op) => {
          for (const outcome of mapper.map(change({ id: 1, ...columns }, op))) {
            if (outcome.kind !== 'contact') continue;
            expect(outcome.contact.phone).toMatch(/^\+[1-9]\d{1,14}$/);
            for (const field of Object.values(outcome.contact.fields)) expect(field).not.toBe('');
          }
        },
      ),
    );
  });
});
