import type { Condition } from '../config/schema.js';
import { type ColumnValue, type JsonValue, type Row, UNCHANGED } from '../domain.js';

type Scalar = string | number | boolean | null;

/**
 * Whether a row passes a mapping's `where`: every condition must hold. Values compare across the types a
 * CRM uses for the same idea: a boolean column matches `true`/`1`/`"t"`, an integer column (number or, for
 * bigint, an exact string) matches `1` or `"1"`, enum and text columns compare exactly.
 *
 * A column that is UNCHANGED (a TOASTed value the server did not resend) satisfies its condition: the value
 * is the one the row had before, when it last matched. Caveat: if the row did not match before either, it is
 * mapped anyway. Only values of about 2 kB or more are TOASTed, so equality conditions on such a column are
 * rare; REPLICA IDENTITY FULL on the table lets the source fill these values in and removes the guess.
 */
export function matchesWhere(where: Readonly<Record<string, Condition>> | undefined, row: Row): boolean {
  if (where === undefined) return true;
  return Object.entries(where).every(([column, condition]) =>
    matchesCondition(Object.hasOwn(row, column) ? (row[column] ?? null) : null, condition),
  );
}

export function matchesCondition(value: ColumnValue, condition: Condition): boolean {
  if (value === UNCHANGED) return true;
  if (Array.isArray(condition)) return condition.some((expected) => equals(value, expected));
  if (condition !== null && typeof condition === 'object') return !matchesCondition(value, condition.not);
  return equals(value, condition);
}

function equals(value: JsonValue, expected: Scalar): boolean {
  if (expected === null || value === null) return value === expected;
  if (typeof value === 'object') return false;
  if (typeof expected === 'boolean') return booleanOf(value) === expected;
  if (typeof expected === 'number') return sameNumber(value, expected);
  if (typeof value === 'string') return value === expected;
  if (typeof value === 'boolean') return booleanOf(expected) === value;
  return sameNumber(expected, value);
}

function booleanOf(value: string | number | boolean): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value === 1 ? true : value === 0 ? false : undefined;
  const text = value.trim().toLowerCase();
  if (['t', 'true', 'y', 'yes', 'on', '1'].includes(text)) return true;
  if (['f', 'false', 'n', 'no', 'off', '0'].includes(text)) return false;
  return undefined;
}

/** Numeric equality; integers written as text (bigint columns) compare exactly, beyond 2^53. */
function sameNumber(value: string | number | boolean, expected: number | string): boolean {
  if (typeof value === 'boolean') return booleanOf(expected) === value;
  const a = numberText(value);
  const b = numberText(expected);
  if (a === undefined || b === undefined) return false;
  if (/^[+-]?\d+$/.test(a) && /^[+-]?\d+$/.test(b)) return BigInt(a) === BigInt(b);
  return Number(a) === Number(b);
}

function numberText(value: string | number): string | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    return Number.isInteger(value) && Number.isSafeInteger(value) ? value.toFixed(0) : String(value);
  }
  const text = value.trim();
  return /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(text) ? text : undefined;
}
