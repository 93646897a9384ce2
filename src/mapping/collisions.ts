import { type ContactChange, type Row, targetKey } from '../domain.js';

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
  keyText: string;
  rawPhone: string;
}

/**
 * Notices when different rows produce the same (list, phone). Verbose upserts by phone, so such rows are one
 * contact there and the newest change wins; the daemon counts and logs each collision so that users can find
 * duplicate people in their CRM. Remembers at most `capacity` phones, least recently seen forgotten first: a
 * collision between rows changed far apart in time can go unnoticed, but memory stays bounded.
 */
export class PhoneCollisions {
  private readonly lastSeen = new Map<string, LastSeen>();

  constructor(private readonly capacity = 100_000) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
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
      keyText: stableText(contact.origin.key),
      rawPhone: contact.origin.rawPhone,
    };
    const previous = this.lastSeen.get(id);
    // Delete first so that setting moves the phone to the most recently seen end of the map.
    this.lastSeen.delete(id);
    this.lastSeen.set(id, current);
    if (this.lastSeen.size > this.capacity) {
      const oldest = this.lastSeen.keys().next();
      if (!oldest.done) this.lastSeen.delete(oldest.value);
    }
    if (
      previous === undefined ||
      (previous.table === current.table && previous.keyText === current.keyText)
    ) {
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

/** A key's text independent of column order ({a, b} and {b, a} are one key). */
function stableText(key: Row): string {
  return JSON.stringify(
    Object.keys(key)
      .sort()
      .map((column) => [column, key[column]]),
  );
}
