import { describe, expect, it } from 'vitest';
import type { ContactChange, ListTarget, Row } from '../../src/domain.js';
import { PhoneCollisions } from '../../src/mapping/collisions.js';

function contact(
  phone: string,
  key: Row,
  rawPhone: string,
  table = 'public.res_partner',
  target: ListTarget = { list: 'A' },
): ContactChange {
  return { target, phone, fields: {}, origin: { table, key, rawPhone }, commitLsn: 1n, backfill: false };
}

describe('PhoneCollisions', () => {
  it('reports two rows whose phones normalise to one number, with both keys and spellings', () => {
    const collisions = new PhoneCollisions(1_000);
    expect(collisions.observe(contact('+33612345678', { id: 1 }, '06 12 34 56 78'))).toBeUndefined();
    expect(collisions.observe(contact('+33612345678', { id: 2 }, '+33 6 12 34 56 78'))).toEqual({
      phone: '+33612345678',
      table: 'public.res_partner',
      tables: ['public.res_partner', 'public.res_partner'],
      keys: [{ id: 1 }, { id: 2 }],
      spellings: ['06 12 34 56 78', '+33 6 12 34 56 78'],
    });
  });

  it('does not report a row changing again, whatever the order of its key columns', () => {
    const collisions = new PhoneCollisions(1_000);
    collisions.observe(contact('+33612345678', { a: 1, b: 2 }, '0612345678'));
    expect(collisions.observe(contact('+33612345678', { b: 2, a: 1 }, '06 12 34 56 78'))).toBeUndefined();
  });

  it('reports rows of different tables feeding one list, but not one phone in different lists', () => {
    const collisions = new PhoneCollisions(1_000);
    collisions.observe(contact('+33612345678', { id: 1 }, '0612345678', 'public.contacts'));
    expect(
      collisions.observe(contact('+33612345678', { id: 1 }, '0612345678', 'public.leads'))?.tables,
    ).toEqual(['public.contacts', 'public.leads']);
    expect(
      collisions.observe(contact('+33612345678', { id: 9 }, '0612345678', 'public.leads', { list: 'B' })),
    ).toBeUndefined();
  });

  it('compares with the newest row: A, B, A reports twice', () => {
    const collisions = new PhoneCollisions(1_000);
    collisions.observe(contact('+33612345678', { id: 1 }, 'x'));
    expect(collisions.observe(contact('+33612345678', { id: 2 }, 'y'))?.keys).toEqual([{ id: 1 }, { id: 2 }]);
    expect(collisions.observe(contact('+33612345678', { id: 1 }, 'x'))?.keys).toEqual([{ id: 2 }, { id: 1 }]);
  });

  it('remembers at most its capacity of phones, forgetting the least recently seen', () => {
    const collisions = new PhoneCollisions(2);
    collisions.observe(contact('+33600000001', { id: 1 }, 'a'));
    collisions.observe(contact('+33600000002', { id: 2 }, 'b'));
    collisions.observe(contact('+33600000001', { id: 1 }, 'a')); // seen again: now the most recent
    collisions.observe(contact('+33600000003', { id: 3 }, 'c')); // forgets +33600000002
    expect(collisions.size).toBe(2);
    expect(collisions.observe(contact('+33600000002', { id: 20 }, 'b'))).toBeUndefined();
    expect(collisions.observe(contact('+33600000003', { id: 30 }, 'c'))).toBeDefined();
    for (let i = 0; i < 1000; i++)
      collisions.observe(contact(`+3360000${String(i).padStart(4, '0')}`, { id: i }, ''));
    expect(collisions.size).toBe(2);
  });
});
