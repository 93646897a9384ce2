import type { ContactChange, ContactFields, ListTarget, Lsn } from '../../src/domain.js';

export const LIST_A: ListTarget = { list: 'A' };
export const LIST_B: ListTarget = { list: 'B' };

/** A change to `phone` on `target`, committed at `lsn`. */
export function change(
  phone: string,
  fields: ContactFields,
  lsn: Lsn,
  options: { target?: ListTarget; backfill?: boolean; table?: string } = {},
): ContactChange {
  return {
    target: options.target ?? LIST_A,
    phone,
    fields,
    origin: {
      table: options.table ?? 'public.people',
      key: { id: phone },
      rawPhone: phone.replace('+1', ''),
    },
    commitLsn: lsn,
    backfill: options.backfill ?? false,
  };
}

/** `+1555` followed by `n` padded to 7 digits: a valid E.164 number per index. */
export function phone(n: number): string {
  return `+1555${String(n).padStart(7, '0')}`;
}
