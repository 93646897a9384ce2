import type { ContactUpsert } from './store.js';
import type { Checked } from './wire.js';

/** The body of `POST /api/public/contacts` taken apart, its contacts not yet checked. */
export interface ContactsRequest {
  contacts: unknown[];
  /** A list name, found or created. */
  list?: string;
  /** An existing list's id. */
  listId?: string;
}

const E164 = /^\+[1-9]\d{6,14}$/;
const US_TEN_DIGITS = /^\d{10}$/;
const US_ELEVEN_DIGITS = /^1\d{10}$/;
const TEXT_FIELDS = ['first_name', 'last_name', 'source'] as const;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const shown = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/**
 * Verbose takes E.164, or a US number of 10 digits (or 11 starting with 1). Anything else, including digits
 * with spaces or dashes, is refused: being strict here is what catches a sender that forgot to normalise.
 */
export function normalisePhone(phone: string): string | undefined {
  if (E164.test(phone)) return phone;
  if (US_TEN_DIGITS.test(phone)) return `+1${phone}`;
  if (US_ELEVEN_DIGITS.test(phone)) return `+${phone}`;
  return undefined;
}

/** Tells apart the three documented body forms: one contact, a bare array, or `{contacts, list | list_id}`. */
export function readContactsRequest(body: unknown): Checked<ContactsRequest> {
  if (Array.isArray(body)) return { ok: true, value: { contacts: body } };
  if (!isObject(body))
    return { ok: false, error: 'Body must be a contact, an array of contacts or {contacts: [...]}' };
  if (!('contacts' in body)) return { ok: true, value: { contacts: [body] } };

  const { contacts, list, list_id: listId } = body;
  if (!Array.isArray(contacts)) return { ok: false, error: 'contacts must be an array' };
  if (list !== undefined && listId !== undefined)
    return { ok: false, error: 'Send either list or list_id, not both' };
  if (list !== undefined && (typeof list !== 'string' || list.trim() === '')) {
    return { ok: false, error: 'list must be a non-empty string (a list name)' };
  }
  if (listId !== undefined && (typeof listId !== 'string' || listId === '')) {
    return { ok: false, error: 'list_id must be a non-empty string' };
  }
  const request: ContactsRequest = { contacts };
  if (typeof list === 'string') request.list = list;
  if (typeof listId === 'string') request.listId = listId;
  return { ok: true, value: request };
}

/**
 * Checks every contact; the first bad one fails the whole request, as Verbose does (it never says which
 * contact of a batch was wrong other than through the error text). Unknown properties are ignored.
 */
export function checkContacts(contacts: readonly unknown[]): Checked<ContactUpsert[]> {
  if (contacts.length === 0) return { ok: false, error: 'contacts must not be empty' };
  const checked: ContactUpsert[] = [];
  for (const contact of contacts) {
    if (!isObject(contact)) return { ok: false, error: `Invalid contact: ${JSON.stringify(contact)}` };
    const { phone } = contact;
    if (phone === undefined || phone === null || phone === '')
      return { ok: false, error: 'phone is required' };
    const e164 = typeof phone === 'string' ? normalisePhone(phone) : undefined;
    if (e164 === undefined) return { ok: false, error: `Invalid phone number: ${shown(phone)}` };
    const upsert: ContactUpsert = { phone: e164 };
    for (const name of TEXT_FIELDS) {
      const value = contact[name];
      if (value === undefined) continue;
      if (typeof value !== 'string')
        return { ok: false, error: `${name} must be a string, got ${shown(value)}` };
      upsert[name] = value;
    }
    checked.push(upsert);
  }
  return { ok: true, value: checked };
}
