import type { ColumnValue, Row } from '../domain.js';

/**
 * A row's identity as one string, equal for the stream's `RowChange.key` and the resync's read of the same row.
 * Values are normalised to strings because the two sides may type a key differently (the number 5 from a
 * SELECT, the text "5" from a decoder); the JSON array keeps composite keys unambiguous.
 */
export function keyString(key: Row, keyColumns: readonly string[]): string {
  return JSON.stringify(keyColumns.map((column) => normalised(key[column])));
}

function normalised(value: ColumnValue | undefined): string | null {
  if (value === undefined || value === null || typeof value === 'symbol') return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
