import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../src/domain.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { closeNames, quoteTable } from '../../src/source/setup.js';
import {
  decodeColumn,
  decodeTimestamp,
  decodeTimestamptz,
  parseArray,
  TypeDecoders,
  type TypeInfo,
} from '../../src/source/values.js';

describe('LSN', () => {
  it('parses and formats X/Y both ways, padded or not, beyond 2^53', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(parseLsn('00000016/0374D848')).toBe(0x160374d848n);
    expect(formatLsn(0x160374d848n)).toBe('16/374D848');
    expect(formatLsn(0n)).toBe('0/0');
    const big = 0xffff_fff0_0000_0001n;
    expect(parseLsn(formatLsn(big))).toBe(big);
    expect(() => parseLsn('16B374D848')).toThrow(/not an LSN/);
  });
});

describe('column values', () => {
  const types = new TypeDecoders();
  const decode = (oid: number, text: string | null | undefined) => decodeColumn(text, types.get(oid));

  it('keeps int8 and numeric exact, makes small numbers numbers', () => {
    expect(decode(20, '9223372036854775807')).toBe('9223372036854775807');
    expect(decode(1700, '-0.000000000000000000001')).toBe('-0.000000000000000000001');
    expect(decode(1700, 'NaN')).toBe('NaN');
    expect(decode(23, '-2147483648')).toBe(-2147483648);
    expect(decode(701, '1.7976931348623157e+308')).toBe(1.7976931348623157e308);
    expect(decode(701, 'Infinity')).toBe('Infinity');
    expect(decode(16, 'f')).toBe(false);
  });

  it('tells NULL from an unchanged TOAST value', () => {
    expect(decode(25, null)).toBeNull();
    expect(decode(25, undefined)).toBe(UNCHANGED);
  });

  it('writes timestamptz in UTC with every digit, and timestamp without a zone', () => {
    expect(decodeTimestamptz('2024-03-17 10:11:12.123456+00')).toBe('2024-03-17T10:11:12.123456Z');
    expect(decodeTimestamptz('2024-03-17 01:02:03-09:30')).toBe('2024-03-17T10:32:03Z');
    expect(decodeTimestamptz('2024-12-31 23:59:59.5+05')).toBe('2024-12-31T18:59:59.5Z');
    expect(decodeTimestamptz('1900-01-01 00:00:00+00:09:21')).toBe('1899-12-31T23:50:39Z');
    expect(decodeTimestamptz('0044-03-15 12:00:00+01')).toBe('0044-03-15T11:00:00Z');
    expect(decodeTimestamptz('infinity')).toBe('infinity');
    expect(decodeTimestamptz('0044-03-15 12:00:00+00 BC')).toBe('0044-03-15 12:00:00+00 BC');
    expect(decodeTimestamp('2024-03-17 10:11:12')).toBe('2024-03-17T10:11:12');
    expect(decodeTimestamp('-infinity')).toBe('-infinity');
  });

  it('parses array literals: quoting, escapes, NULL, nesting, explicit bounds', () => {
    const text = (v: string) => v;
    expect(parseArray('{}', text)).toEqual([]);
    expect(parseArray('{a,"b c","d\\"e","f\\\\g",NULL,"NULL"}', text)).toEqual([
      'a',
      'b c',
      'd"e',
      'f\\g',
      null,
      'NULL',
    ]);
    expect(parseArray('{{1,2},{3,4}}', Number)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(parseArray('[0:1]={x,y}', text)).toEqual(['x', 'y']);
    expect(parseArray('{(1,2),(0,0);(3,4),(1,1)}', text, ';')).toEqual(['(1,2),(0,0)', '(3,4),(1,1)']);
    expect(decode(1185, '{"2024-01-01 00:00:00+00",NULL}')).toEqual(['2024-01-01T00:00:00Z', null]);
    expect(decode(3807, '{"{\\"a\\": 1}"}')).toEqual([{ a: 1 }]);
    expect(() => parseArray('{a,b', text)).toThrow(/malformed array/);
  });

  it('decodes domains as their base type and arrays of custom types element by element', async () => {
    const catalog: Record<number, TypeInfo> = {
      90001: { oid: 90001, typtype: 'd', typbasetype: 90002, typelem: 0, typcategory: 'N', typdelim: ',' },
      90002: { oid: 90002, typtype: 'd', typbasetype: 20, typelem: 0, typcategory: 'N', typdelim: ',' },
      90003: { oid: 90003, typtype: 'b', typbasetype: 0, typelem: 90001, typcategory: 'A', typdelim: ',' },
      90004: { oid: 90004, typtype: 'e', typbasetype: 0, typelem: 0, typcategory: 'E', typdelim: ',' },
    };
    const asked: number[][] = [];
    const custom = new TypeDecoders(async (oids) => {
      asked.push(oids);
      return oids.flatMap((oid) => (catalog[oid] ? [catalog[oid]] : []));
    });
    expect(custom.needsLookup([23, 90003])).toBe(true);
    await custom.resolve([23, 90003, 90004, 99999]);
    expect(custom.needsLookup([90003, 90004, 99999])).toBe(false);
    expect(custom.get(90003)('{1,9007199254740993}')).toEqual(['1', '9007199254740993']);
    expect(custom.get(90001)('42')).toBe('42');
    expect(custom.get(90004)('happy')).toBe('happy');
    expect(custom.get(99999)('whatever')).toBe('whatever');
    expect(asked).toEqual([[90003, 90004, 99999], [90001], [90002]]);
  });
});

describe('names', () => {
  it('quotes schema and table as written', () => {
    expect(quoteTable('public.Person')).toBe('"public"."Person"');
    expect(quoteTable('odd"name')).toBe('"public"."odd""name"');
  });

  it('suggests names that differ by case, schema or a typo, closest first', () => {
    const tables = ['public.Person', 'crm.person', 'public.persons', 'public.orders'];
    expect(closeNames('public.person', tables)).toEqual(['public.Person', 'crm.person', 'public.persons']);
    expect(closeNames('public.ordres', tables)).toEqual(['public.orders']);
    expect(closeNames('public.invoices', tables)).toEqual([]);
  });
});
