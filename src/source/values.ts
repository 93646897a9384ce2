import { type ColumnValue, type JsonValue, UNCHANGED } from '../domain.js';

/**
 * Column values arrive from pgoutput as PostgreSQL's text output. The replication session is opened with
 * `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601` and `extra_float_digits=1` (see `changeStream.ts`),
 * so the text forms decoded here are stable whatever the server's defaults are.
 *
 * We decode the text ourselves instead of using pg's global type parsers (which the library applies): those
 * turn timestamptz into a `Date` (microseconds lost), timestamp without time zone into a `Date` in the
 * process's local zone, and can be changed by any other module of the process (`types.setTypeParser(20, …)`),
 * which would make int8 lossy.
 *
 * | type | value |
 * | --- | --- |
 * | int8, numeric, money | exact decimal string (`'9007199254740993'`) |
 * | int2, int4, oid, float4, float8 | number (`'NaN'`, `'Infinity'`, `'-Infinity'` stay strings: JSON has no such numbers) |
 * | bool | boolean |
 * | timestamptz | ISO 8601 in UTC with every digit the server sent: `2024-03-17T10:11:12.123456Z` |
 * | timestamp | ISO 8601 without a zone (the wall-clock time as stored): `2024-03-17T10:11:12.5` |
 * | date | `YYYY-MM-DD` |
 * | json, jsonb | parsed |
 * | arrays (any element type, nested) | arrays of decoded elements |
 * | everything else (text, varchar, uuid, enums, time, interval, bytea as `\x…`, …) | the text as PostgreSQL prints it |
 *
 * BC dates and `infinity` timestamps are kept as PostgreSQL prints them. Domains decode as their base type.
 */
export type Decoder = (text: string) => JsonValue;

const text: Decoder = (value) => value;
const integer: Decoder = (value) => Number(value);
const float: Decoder = (value) => {
  const number = Number(value);
  return Number.isFinite(number) ? number : value;
};
const boolean: Decoder = (value) => value === 't' || value === 'true';
const json: Decoder = (value) => JSON.parse(value) as JsonValue;

const TIMESTAMPTZ =
  /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/;
const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/;

/** `2024-03-17 10:11:12.123456+00` → `2024-03-17T10:11:12.123456Z`; other offsets are converted to UTC. */
export function decodeTimestamptz(value: string): string {
  const m = TIMESTAMPTZ.exec(value);
  if (!m) return value;
  const [, year, month, day, hour, minute, second, fraction = '', sign, oh = '0', om = '0', os = '0'] = m;
  const offsetSeconds = Number(oh) * 3600 + Number(om) * 60 + Number(os);
  if (offsetSeconds === 0) return `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction}Z`;
  // Offsets are whole seconds, so the fraction is unaffected by the shift to UTC.
  const utc = new Date(0);
  utc.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  utc.setUTCHours(
    Number(hour),
    Number(minute),
    Number(second) - (sign === '-' ? -offsetSeconds : offsetSeconds),
    0,
  );
  return `${utc.toISOString().slice(0, -5)}${fraction}Z`;
}

/** `2024-03-17 10:11:12.5` → `2024-03-17T10:11:12.5`: a wall-clock time with no zone, kept without one. */
export function decodeTimestamp(value: string): string {
  const m = TIMESTAMP.exec(value);
  return m ? `${m[1]}T${m[2]}` : value;
}

/**
 * Parses an array literal such as `{1,2,NULL}`, `{{"a b","c\"d"},{e,f}}` or `[0:1]={x,y}` (explicit bounds are
 * dropped), decoding each element with `element`.
 */
export function parseArray(literal: string, element: Decoder, delimiter = ','): JsonValue[] {
  let i = 0;
  if (literal[0] === '[') i = literal.indexOf('=') + 1;
  const fail = (): never => {
    throw new Error(`malformed array literal at position ${i}: ${literal.slice(0, 200)}`);
  };
  const skipSpace = () => {
    while (literal[i] === ' ') i++;
  };
  const parseLevel = (): JsonValue[] => {
    if (literal[i] !== '{') fail();
    i++;
    const out: JsonValue[] = [];
    skipSpace();
    if (literal[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      skipSpace();
      const c = literal[i];
      if (c === '{') {
        out.push(parseLevel());
      } else if (c === '"') {
        i++;
        let value = '';
        let start = i;
        while (literal[i] !== '"') {
          if (i >= literal.length) fail();
          if (literal[i] === '\\') {
            value += literal.slice(start, i);
            i++;
            start = i;
          }
          i++;
        }
        value += literal.slice(start, i);
        i++;
        out.push(element(value));
      } else {
        const start = i;
        while (i < literal.length && literal[i] !== delimiter && literal[i] !== '}') i++;
        const raw = literal.slice(start, i).trim();
        out.push(raw.toUpperCase() === 'NULL' ? null : element(raw));
      }
      skipSpace();
      if (literal[i] === delimiter) {
        i++;
        continue;
      }
      if (literal[i] === '}') {
        i++;
        return out;
      }
      fail();
    }
  };
  return parseLevel();
}

const array =
  (element: Decoder, delimiter = ','): Decoder =>
  (value) =>
    parseArray(value, element, delimiter);

const BUILTIN = new Map<number, Decoder>([
  [16, boolean],
  [20, text], // int8: exact
  [21, integer],
  [23, integer],
  [26, integer],
  [700, float],
  [701, float],
  [1700, text], // numeric: exact
  [790, text], // money
  [114, json],
  [3802, json],
  [1082, text], // date: YYYY-MM-DD with DateStyle=ISO
  [1114, decodeTimestamp],
  [1184, decodeTimestamptz],
  [17, text],
  [18, text],
  [19, text],
  [25, text],
  [1042, text],
  [1043, text],
  [2950, text],
  [142, text],
  [1083, text],
  [1266, text],
  [1186, text],
  [869, text],
  [650, text],
  [829, text],
]);
for (const [arrayOid, elementOid] of [
  [1000, 16],
  [1001, 17],
  [1002, 18],
  [1003, 19],
  [1005, 21],
  [1007, 23],
  [1016, 20],
  [1028, 26],
  [1009, 25],
  [1014, 1042],
  [1015, 1043],
  [2951, 2950],
  [1021, 700],
  [1022, 701],
  [1231, 1700],
  [791, 790],
  [199, 114],
  [3807, 3802],
  [1182, 1082],
  [1115, 1114],
  [1185, 1184],
  [1183, 1083],
  [1270, 1266],
  [1187, 1186],
  [143, 142],
  [1041, 869],
  [651, 650],
  [1040, 829],
] as const) {
  BUILTIN.set(arrayOid, array(BUILTIN.get(elementOid)!));
}

/** A `pg_type` row, enough to decode a type this module does not know by heart. */
export interface TypeInfo {
  oid: number;
  /** `b` base, `d` domain, `e` enum, `c` composite, `r` range, `m` multirange, `p` pseudo. */
  typtype: string;
  /** The domain's base type; 0 otherwise. */
  typbasetype: number;
  /** The element type of an array type; 0 otherwise. */
  typelem: number;
  /** `A` for arrays. */
  typcategory: string;
  typdelim: string;
}

/** Reads `pg_type` rows for the given OIDs. */
export type TypeLookup = (oids: number[]) => Promise<TypeInfo[]>;

export const TYPE_LOOKUP_SQL =
  'SELECT oid::int AS oid, typtype::text AS typtype, typbasetype::int AS typbasetype, typelem::int AS typelem, ' +
  'typcategory::text AS typcategory, typdelim::text AS typdelim FROM pg_type WHERE oid = ANY($1::oid[])';

/**
 * The decoder for each column type. Built-in types are known by heart; others (domains, enums, arrays of
 * them, extension types) are looked up once in `pg_type` and cached, so a domain over int4 decodes as a
 * number and an array of enums as an array of strings. A type it cannot resolve decodes as text.
 */
export class TypeDecoders {
  private readonly known = new Map<number, Decoder>(BUILTIN);
  private readonly infos = new Map<number, TypeInfo>();

  constructor(private readonly lookup?: TypeLookup) {}

  /** The decoder for a type; text for one not known (call `resolve` first for non-built-in types). */
  get(oid: number): Decoder {
    return this.known.get(oid) ?? text;
  }

  /** Whether `resolve` has work to do for these types. */
  needsLookup(oids: Iterable<number>): boolean {
    if (!this.lookup) return false;
    for (const oid of oids) if (!this.known.has(oid)) return true;
    return false;
  }

  /** Looks up the types not known yet (and their base and element types), then builds their decoders. */
  async resolve(types: Iterable<number>): Promise<void> {
    if (!this.lookup) return;
    const oids = [...new Set(types)];
    let wanted = oids.filter((oid) => !this.known.has(oid) && !this.infos.has(oid));
    // Domains of domains and arrays of domains need a few rounds; each round goes one level deeper.
    for (let round = 0; wanted.length > 0 && round < 8; round++) {
      const rows = await this.lookup(wanted);
      for (const row of rows) this.infos.set(row.oid, row);
      for (const oid of wanted) if (!this.infos.has(oid)) this.known.set(oid, text);
      wanted = rows
        .flatMap((row) => [row.typbasetype, row.typelem])
        .filter((oid) => oid !== 0 && !this.known.has(oid) && !this.infos.has(oid));
    }
    for (const oid of oids) this.build(oid, 0);
  }

  private build(oid: number, depth: number): Decoder {
    const known = this.known.get(oid);
    if (known) return known;
    const info = this.infos.get(oid);
    let decoder: Decoder = text;
    if (info && depth < 16) {
      if (info.typtype === 'd' && info.typbasetype !== 0) decoder = this.build(info.typbasetype, depth + 1);
      else if (info.typcategory === 'A' && info.typelem !== 0)
        decoder = array(this.build(info.typelem, depth + 1), info.typdelim || ',');
    }
    this.known.set(oid, decoder);
    return decoder;
  }
}

/**
 * One column value as the library hands it over when every column parser is the identity (see
 * `TextPgoutputPlugin`): a string (text format), null (SQL NULL) or undefined (an unchanged TOASTed value the
 * server did not send).
 */
export function decodeColumn(raw: unknown, decoder: Decoder): ColumnValue {
  if (raw === undefined) return UNCHANGED;
  if (raw === null) return null;
  if (typeof raw === 'string') return decoder(raw);
  // Binary format is never requested; keep something inspectable rather than fail.
  if (raw instanceof Uint8Array) return `\\x${Buffer.from(raw).toString('hex')}`;
  return String(raw);
}
