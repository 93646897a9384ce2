import { randomUUID } from 'node:crypto';

/** The contact fields Verbose documents for an upsert. */
export interface ContactFields {
  first_name?: string;
  last_name?: string;
  source?: string;
}

/** One contact of an accepted request, its phone already in E.164. */
export interface ContactUpsert extends ContactFields {
  phone: string;
}

/** What the simulated Verbose holds for one phone. */
export interface ContactRecord extends ContactFields {
  phone: string;
  /** The lists the contact was added to, in the order it joined them. */
  list_ids: string[];
  /** How many requests wrote this phone (a duplicate within one request counts once). */
  writes: number;
}

export interface ListRecord {
  id: string;
  name: string;
  /** Number of contacts on the list. */
  size: number;
}

/** A list that exists before any request, so that a configuration naming it by `list_id` can be tried. */
export interface ListSeed {
  id: string;
  name: string;
}

export interface UpsertOutcome {
  /** Distinct phones written: created or updated. */
  imported: number;
  /** Contacts that repeated a phone seen earlier in the same request (merged into it, the later one winning). */
  skipped: number;
  created: number;
  updated: number;
}

interface StoredContact {
  fields: ContactFields;
  listIds: Set<string>;
  writes: number;
}

interface StoredList {
  id: string;
  name: string;
  members: Set<string>;
}

const FIELD_NAMES = ['first_name', 'last_name', 'source'] as const;

/**
 * Contacts by E.164 phone and lists by id and by name. An upsert only sets the fields it carries: a field
 * left out keeps its stored value. Verbose does not document this; it is the simulator's choice, and the
 * one verbose-sync depends on (unchanged TOAST columns are left out, never sent empty). List names match
 * exactly (case and spaces count).
 */
export class ContactStore {
  private readonly byPhone = new Map<string, StoredContact>();
  private readonly listsById = new Map<string, StoredList>();
  private readonly listsByName = new Map<string, StoredList>();

  constructor(private readonly seeds: readonly ListSeed[] = []) {
    this.clear();
  }

  get size(): number {
    return this.byPhone.size;
  }

  contact(phone: string): ContactRecord | undefined {
    const stored = this.byPhone.get(phone);
    return stored && toRecord(phone, stored);
  }

  contacts(): ContactRecord[] {
    return Array.from(this.byPhone, ([phone, stored]) => toRecord(phone, stored));
  }

  lists(): ListRecord[] {
    return Array.from(this.listsById.values(), toListRecord);
  }

  list(id: string): ListRecord | undefined {
    const list = this.listsById.get(id);
    return list && toListRecord(list);
  }

  listByName(name: string): ListRecord | undefined {
    const list = this.listsByName.get(name);
    return list && toListRecord(list);
  }

  hasList(id: string): boolean {
    return this.listsById.has(id);
  }

  /** Returns the id of the list called `name`, creating the list when there is none. */
  findOrCreateList(name: string): string {
    const existing = this.listsByName.get(name);
    if (existing) return existing.id;
    return this.addList({ id: randomUUID(), name }).id;
  }

  /**
   * Writes a whole request: contacts repeating a phone are merged in order first, so each phone is written
   * once. `listId` must name an existing list (checked by the caller, which answers 400 otherwise).
   */
  upsert(contacts: readonly ContactUpsert[], listId?: string): UpsertOutcome {
    const list = listId === undefined ? undefined : this.listsById.get(listId);
    if (listId !== undefined && !list) throw new Error(`list_id not found: ${listId}`);
    const merged = new Map<string, ContactFields>();
    for (const contact of contacts) {
      merged.set(contact.phone, { ...merged.get(contact.phone), ...fieldsOf(contact) });
    }
    let created = 0;
    for (const [phone, fields] of merged) {
      let stored = this.byPhone.get(phone);
      if (!stored) {
        stored = { fields: {}, listIds: new Set(), writes: 0 };
        this.byPhone.set(phone, stored);
        created += 1;
      }
      Object.assign(stored.fields, fields);
      stored.writes += 1;
      if (list) {
        stored.listIds.add(list.id);
        list.members.add(phone);
      }
    }
    const imported = merged.size;
    return { imported, skipped: contacts.length - imported, created, updated: imported - created };
  }

  /** Forgets every contact and every list except the seeded ones, which come back empty. */
  clear(): void {
    this.byPhone.clear();
    this.listsById.clear();
    this.listsByName.clear();
    for (const seed of this.seeds) this.addList(seed);
  }

  private addList(seed: ListSeed): StoredList {
    const list: StoredList = { id: seed.id, name: seed.name, members: new Set() };
    this.listsById.set(list.id, list);
    this.listsByName.set(list.name, list);
    return list;
  }
}

function fieldsOf(contact: ContactUpsert): ContactFields {
  const fields: ContactFields = {};
  for (const name of FIELD_NAMES) {
    const value = contact[name];
    if (value !== undefined) fields[name] = value;
  }
  return fields;
}

function toRecord(phone: string, stored: StoredContact): ContactRecord {
  return { phone, ...stored.fields, list_ids: [...stored.listIds], writes: stored.writes };
}

function toListRecord(list: StoredList): ListRecord {
  return { id: list.id, name: list.name, size: list.members.size };
}
