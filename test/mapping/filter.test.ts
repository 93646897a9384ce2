import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../src/config/schema.js';
import { type ColumnValue, UNCHANGED } from '../../src/domain.js';
import { matchesCondition, matchesWhere } from '../../src/mapping/filter.js';

const matches = (value: ColumnValue, condition: Condition) => matchesCondition(value, condition);

describe('where', () => {
  it('matches a boolean column against true/false, 1/0 and their spellings', () => {
    expect(matches(true, true)).toBe(true);
    expect(matches(false, true)).toBe(false);
    expect(matches(false, 0)).toBe(true);
    expect(matches(true, 1)).toBe(true);
    expect(matches(true, 'true')).toBe(true);
    expect(matches(false, 't')).toBe(false);
    expect(matches(null, false)).toBe(false);
  });

  it('matches an integer column (number, or exact text for bigint) against 1, "1" and true', () => {
    expect(matches(0, 0)).toBe(true);
    expect(matches(1, 0)).toBe(false);
    expect(matches(1, true)).toBe(true);
    expect(matches(0, false)).toBe(true);
    expect(matches(2, true)).toBe(false);
    expect(matches('1', 1)).toBe(true);
    expect(matches(1, '1')).toBe(true);
    expect(matches('9007199254740993', 9007199254740992)).toBe(false);
    expect(matches('9007199254740993', '9007199254740993')).toBe(true);
  });

  it('compares numeric text numerically and other text exactly', () => {
    expect(matches('1.50', 1.5)).toBe(true);
    expect(matches('1.50', '1.5')).toBe(false);
    expect(matches('contact', 'contact')).toBe(true);
    expect(matches('Contact', 'contact')).toBe(false);
    expect(matches('abc', 0)).toBe(false);
    expect(matches({ a: 1 }, 'x')).toBe(false);
  });

  it('treats null as IS NULL, and a list as "one of"', () => {
    expect(matches(null, null)).toBe(true);
    expect(matches('', null)).toBe(false);
    expect(matches('2024-01-01T00:00:00.000Z', null)).toBe(false);
    expect(matches('lead', ['lead', 'customer'])).toBe(true);
    expect(matches(null, ['lead', null])).toBe(true);
    expect(matches('partner', ['lead', 'customer'])).toBe(false);
  });

  it('negates with not', () => {
    expect(matches(null, { not: null })).toBe(false);
    expect(matches('2024-01-01T00:00:00.000Z', { not: null })).toBe(true);
    expect(matches('partner', { not: ['lead', 'customer'] })).toBe(true);
    expect(matches(null, { not: 1 })).toBe(true);
    expect(matches(true, { not: 1 })).toBe(false);
  });

  it('lets an UNCHANGED column pass any condition: it holds the value the row had when it last matched', () => {
    expect(matches(UNCHANGED, 'x')).toBe(true);
    expect(matches(UNCHANGED, { not: 'x' })).toBe(true);
    expect(matches(UNCHANGED, null)).toBe(true);
  });

  it('requires every condition, reads a missing column as NULL, and passes every row without where', () => {
    const row = { active: true, is_company: false, deletedAt: null };
    expect(matchesWhere({ active: true, is_company: false }, row)).toBe(true);
    expect(matchesWhere({ active: true, is_company: true }, row)).toBe(false);
    expect(matchesWhere({ deletedAt: null }, row)).toBe(true);
    expect(matchesWhere({ missing: null }, row)).toBe(true);
    expect(matchesWhere(undefined, row)).toBe(true);
  });

  it('{not: x} is the exact opposite of x for every known value', () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.integer({ min: -2, max: 2 }),
      fc.boolean(),
      fc.constant(null),
    );
    const condition = fc.oneof(scalar, fc.array(scalar, { minLength: 1, maxLength: 3 }));
    const value = fc.oneof(scalar, fc.constantFrom('0', '1', 't', 'f', '1.0'));
    fc.assert(
      fc.property(value, condition, (v, c) => {
        expect(matches(v, { not: c })).toBe(!matches(v, c));
      }),
    );
  });
});
