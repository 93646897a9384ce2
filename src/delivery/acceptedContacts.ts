import type { ContactFields } from '../domain.js';
import { RecentMap } from '../recentMap.js';
import type { CoalescedContact } from './coalescer.js';

/** What Verbose holds for one phone: its fields (one contact per phone, whatever the list) and its lists. */
interface Accepted {
  fields: Readonly<ContactFields>;
  targets: Set<string>;
}

/**
 * What Verbose last accepted for each phone, as far as this process sent it: a bounded, least recently used
 * memory. A live change that would send exactly these values to a list the phone is already on (a CRM save
 * that touched only unmapped columns, a phone re-spelled to the same number) is settled without a request.
 *
 * Only consulted for the oldest entry of a phone, when every earlier state of it is settled, so what it holds
 * is what Verbose has. Forgotten on restart (the first change then simply sends); never used for resync rows,
 * which exist to repair drift.
 */
export class AcceptedContacts {
  private readonly phones: RecentMap<string, Accepted>;

  constructor(capacity: number) {
    this.phones = new RecentMap(capacity);
  }

  /** True when the contact is on its list already and every field equals what Verbose last accepted. */
  unchanged(contact: CoalescedContact): boolean {
    const accepted = this.phones.get(contact.phone);
    if (!accepted) return false;
    return (
      accepted.targets.has(contact.targetKey) &&
      Object.entries(contact.fields).every(
        ([field, value]) => accepted.fields[field as keyof ContactFields] === value,
      )
    );
  }

  remember(contact: CoalescedContact): void {
    const previous = this.phones.get(contact.phone);
    this.phones.set(contact.phone, {
      // An absent field is left alone by Verbose, so it holds the old values overlaid with the new.
      fields: { ...previous?.fields, ...contact.fields },
      targets: (previous?.targets ?? new Set()).add(contact.targetKey),
    });
  }
}
