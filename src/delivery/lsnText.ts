import type { Lsn } from '../domain.js';

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** `0x16B3748n` → `0/16B3748`, the way PostgreSQL writes an LSN. */
export function formatLsn(lsn: Lsn): string {
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

/** `0/16B3748` → `0x16B3748n`; undefined when the text is not an LSN. */
export function parseLsn(text: string): Lsn | undefined {
  const match = LSN_TEXT.exec(text);
  if (!match) return undefined;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}
