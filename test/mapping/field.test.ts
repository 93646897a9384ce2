import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Row, UNCHANGED } from '../../src/domain.js';
import { evaluateField, fieldColumns } from '../../src/mapping/field.js';
import { MAX_VALUE_LENGTH } from '../../src/mapping/text.js';

const row: Row = {
  id: '42',
  name: '  Jean   Dupont ',
  mobile: null,
  phone: '  ',
  work: '+33 1 42 68 53 00',
  nameFirstName: 'Ada',
  nameLastName: 'Lovelace',
  blank: '',
  notes: UNCHANGED,
  age: 36,
  vip: true,
  tags: ['a', 'b'],
  badge: 'A\u0000B\u0007C\tD\nE\u200dF',
};

describe('evaluateField', () => {
  it('reads a column, trimming outer white space', () => {
    expect(evaluateField('name', row)).toBe('Jean   Dupont');
    expect(evaluateField({ column: 'work' }, row)).toBe('+33 1 42 68 53 00');
  });

  it('takes the first non-empty of several columns (NULL and white space count as empty)', () => {
    expect(evaluateField(['mobile', 'phone', 'work'], row)).toBe('+33 1 42 68 53 00');
    expect(evaluateField({ columns: ['mobile', 'phone'] }, row)).toBeUndefined();
  });

  it('gives a constant value', () => {
    expect(evaluateField({ value: 'odoo' }, row)).toBe('odoo');
  });

  it('fills a template with camelCase columns as written, without stray spaces from empty ones', () => {
    expect(evaluateField({ template: '{nameFirstName} {nameLastName}' }, row)).toBe('Ada Lovelace');
    expect(evaluateField({ template: '{nameFirstName} {blank} {nameLastName}' }, row)).toBe('Ada Lovelace');
    expect(evaluateField({ template: '{ nameFirstName }!' }, row)).toBe('Ada!');
    expect(evaluateField({ template: '{blank} {mobile}' }, row)).toBeUndefined();
  });

  it('applies transforms in order, then the default when the result is empty', () => {
    expect(evaluateField({ column: 'name', transform: 'first_word' }, row)).toBe('Jean');
    expect(evaluateField({ column: 'name', transform: ['rest_words', 'upper'] }, row)).toBe('DUPONT');
    expect(evaluateField({ column: 'blank', default: 'Unknown' }, row)).toBe('Unknown');
    expect(evaluateField({ value: 'Ada', transform: 'rest_words', default: '-' }, row)).toBe('-');
  });

  it('leaves an empty field out unless send_empty asks to send ""', () => {
    expect(evaluateField('mobile', row)).toBeUndefined();
    expect(evaluateField('phone', row)).toBeUndefined();
    expect(evaluateField({ column: 'phone', send_empty: true }, row)).toBe('');
    expect(evaluateField({ column: 'missing_column' }, row)).toBeUndefined();
  });

  it('leaves an UNCHANGED column unknown: not empty, not the default, not ""', () => {
    expect(evaluateField('notes', row)).toBe(UNCHANGED);
    expect(evaluateField({ column: 'notes', default: 'x', send_empty: true }, row)).toBe(UNCHANGED);
    expect(evaluateField({ template: '{name} {notes}' }, row)).toBe(UNCHANGED);
    // The unknown column might have been the first non-empty one…
    expect(evaluateField(['mobile', 'notes', 'work'], row)).toBe(UNCHANGED);
    // …but not when a known non-empty column comes first.
    expect(evaluateField(['work', 'notes'], row)).toBe('+33 1 42 68 53 00');
  });

  it('writes numbers, booleans and json as text', () => {
    expect(evaluateField('age', row)).toBe('36');
    expect(evaluateField('vip', row)).toBe('true');
    expect(evaluateField('tags', row)).toBe('["a","b"]');
  });

  it('strips control characters, turning tabs and line breaks into spaces', () => {
    expect(evaluateField('badge', row)).toBe('ABC D E\u200dF');
  });

  it(`cuts values longer than ${MAX_VALUE_LENGTH} characters, never inside a character`, () => {
    const long = '😀'.repeat(400);
    const value = evaluateField('long', { long });
    expect(value).toBe('😀'.repeat(MAX_VALUE_LENGTH));
  });

  it('never gives a value with outer white space, control characters or over the length limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
        const value = evaluateField('c', { c: text });
        if (value === undefined) {
          expect(text.replace(/\p{Cc}/gu, '').trim()).toBe('');
          return;
        }
        expect(typeof value).toBe('string');
        const s = value as string;
        expect(s).toBe(s.trim());
        expect(s).not.toMatch(/\p{Cc}/u);
        expect([...s].length).toBeLessThanOrEqual(MAX_VALUE_LENGTH);
        expect(s).not.toBe('');
      }),
    );
  });

  it('lists the columns a field reads', () => {
    expect(fieldColumns('a')).toEqual(['a']);
    expect(fieldColumns(['a', 'b'])).toEqual(['a', 'b']);
    expect(fieldColumns({ template: '{phonesPrimaryPhoneCallingCode}{phonesPrimaryPhoneNumber}' })).toEqual([
      'phonesPrimaryPhoneCallingCode',
      'phonesPrimaryPhoneNumber',
    ]);
    expect(fieldColumns({ value: 'x' })).toEqual([]);
  });
});
