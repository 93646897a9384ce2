import type { Lsn } from './domain.js';

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** `16/B374D848` (as PostgreSQL prints a pg_lsn, zero-padded or not) → 0x16B374D848n. */
export function parseLsn(text: string): Lsn {
  const match = LSN.exec(text.trim());
  if (!match)
    throw new Error(`not an LSN: ${JSON.stringify(text)} (expected two hex numbers such as 16/B374D848)`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** 0x16B374D848n → `16/B374D848`, the form PostgreSQL accepts as a pg_lsn and in START_REPLICATION. */
export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n || lsn > 0xffff_ffff_ffff_ffffn) throw new RangeError(`LSN out of range: ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffff_ffffn).toString(16).toUpperCase()}`;
}
