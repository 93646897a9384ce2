import { type ContactChange, type Row, targetKey } from '../domain.js';
import { RecentMap } from '../recentMap.js';

/** Two rows whose phones normalise to one number in one list: Verbose keeps one contact for both. */
export interface PhoneCollision {
  phone: string;
  /** The table of the newer row (the label of `metrics.phoneCollisions`). */
  table: string;
  /** The tables of the older and the newer row; they differ when two tables feed one list. */
  tables: [previous: string, current: string];
  keys: [previous: Row, current: Row];
  /** The phones as written in the CRM, e.g. `06 12 34 56 78` and `+33 6 12 34 56 78`. */
  spellings: [previous: string, current: string];
}

interface LastSeen {
  table: string;
  key: Row;
  rawPhone: string;
}

/**
 * Notices when different rows produce the same (list, phone). Verbose upserts by phone, so such rows are one
 * contact there and the newest change wins; the daemon counts and logs each collision so that users can find
 * duplicate people in their CRM. Remembers at most `capacity` phones, least recently seen forgotten first: a
 * collision between rows changed far apart in time can go unnoticed, but memory stays bounded.
 */
export class PhoneCollisions {
  private readonly lastSeen: RecentMap<string, LastSeen>;

  constructor(capacity: number) {
    this.lastSeen = new RecentMap(capacity);
  }

  get size(): number {
    return this.lastSeen.size;
  }

  /** Records the contact's row as the latest for its phone; returns the collision when another row had it. */
  observe(contact: ContactChange): PhoneCollision | undefined {
    const id = `${targetKey(contact.target)}\u0000${contact.phone}`;
    const current: LastSeen = {
      table: contact.origin.table,
      key: contact.origin.key,
      rawPhone: contact.origin.rawPhone,
    };
    const previous = this.lastSeen.get(id);
    this.lastSeen.set(id, current);
    if (previous === undefined || (previous.table === current.table && sameKey(previous.key, current.key))) {
      return undefined;
    }
    return {
      phone: contact.phone,
      table: current.table,
      tables: [previous.table, current.table],
      keys: [previous.key, current.key],
      spellings: [previous.rawPhone, current.rawPhone],
    };
  }
}

/**
 * The same key whatever the order of its columns ({a, b} and {b, a} are one key), compared value by value: the
 * key's text was built for every change before, which cost more than the rest of the check.
 */
function sameKey(a: Row, b: Row): boolean {
  const columns = Object.keys(a);
  if (columns.length !== Object.keys(b).length) return false;
  for (const column of columns) {
    if (!(column in b)) return false;
    const left = a[column];
    const right = b[column];
    if (left === right) continue;
    // json key columns arrive as objects: compare their text, as the whole key's text was compared.
    if (typeof left !== 'object' || typeof right !== 'object' || left === null || right === null)
      return false;
    if (stableText({ value: left }) !== stableText({ value: right })) return false;
  }
  return true;
}

/** A key's text independent of column order ({a, b} and {b, a} are one key). */
function stableText(key: Row): string {
  return JSON.stringify(
    Object.keys(key)
      .sort()
      .map((column) => [column, key[column]]),
  );
}
