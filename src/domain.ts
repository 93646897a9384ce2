/**
 * The values that flow between the pipeline's stages (DESIGN.md section 1):
 * source ─RowChange▶ mapping ─ContactChange▶ coalescer ─▶ delivery, with commit LSNs flowing back to the checkpoint.
 */

/** A log sequence number as an unsigned 64-bit integer, so that ordering is plain comparison. */
export type Lsn = bigint;

/**
 * Marks a column whose value the server did not send (an unchanged TOASTed value in an UPDATE).
 * The value is unknown, not empty: mapping leaves such a column out of the contact.
 */
export const UNCHANGED = Symbol('unchanged TOAST value');
/** bigint and numeric arrive as exact strings, timestamps as ISO 8601 strings, json as parsed values. */
export type ColumnValue = JsonValue | typeof UNCHANGED;
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Row = Record<string, ColumnValue>;

/** `read` is a row loaded by a full resync rather than a change from the stream. */
export type RowOp = 'insert' | 'update' | 'delete' | 'truncate' | 'read';

export interface RowChange {
  /** `schema.table`, each part exactly as named in the database (unquoted). */
  table: string;
  op: RowOp;
  /** The new row for insert, update and read; for delete, the old key (or whole old row with REPLICA IDENTITY FULL); null for truncate. */
  row: Row | null;
  /** The row's primary key (or replica identity) columns and values; empty for truncate. */
  key: Row;
  /** The row's key before an update that changed it, when the server sent it. */
  oldKey?: Row | undefined;
  /** The commit LSN of the transaction this change belongs to; several changes share one. */
  commitLsn: Lsn;
}

/** Where a contact goes: the request's `list`, `list_id`, or no list at all. */
export type ListTarget = { list: string } | { list_id: string } | Record<string, never>;

export const CONTACT_FIELDS = ['first_name', 'last_name', 'source'] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];
/** Only the fields that are known: an absent field is left alone in Verbose, never cleared. */
export type ContactFields = Partial<Record<ContactField, string>>;

/** Which source row a contact came from, for rejects, collisions and logs. */
export interface RowOrigin {
  table: string;
  /** The row's primary key (or replica identity) columns and values. */
  key: Row;
  /** The phone as written in the CRM, before normalisation. */
  rawPhone: string;
}

export interface ContactChange {
  target: ListTarget;
  /** E.164, e.g. `+15551234567`. */
  phone: string;
  fields: ContactFields;
  origin: RowOrigin;
  commitLsn: Lsn;
  /** From a full resync rather than the live stream: sent with what the rate budget leaves after live changes. */
  backfill: boolean;
}

/** A row that could not become a contact, kept with its reason so the user can fix it. */
export interface Rejection {
  origin: RowOrigin;
  reason: string;
  commitLsn: Lsn;
  /** The contact that would have been sent, when there was one (an API rejection). */
  contact?: { target: ListTarget; phone: string; fields: ContactFields } | undefined;
}

/** A stable string for a list target, for grouping requests and keying the coalescer. */
export function targetKey(target: ListTarget): string {
  if ('list_id' in target) return `list_id:${target.list_id}`;
  if ('list' in target) return `list:${target.list}`;
  return 'none';
}
