import type { ContactRecord, ContactStore } from '../simulator/simulator.js';

interface Seen {
  writes: number;
  name: string;
}

/** Watches the simulator's contacts and describes each write since the last look, as it reached Verbose. */
export class DeliveryWatch {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly store: ContactStore) {}

  /** Takes everything in Verbose now as seen, without describing it (after the first-start resync). */
  catchUp(): void {
    this.poll();
  }

  /** One line per contact written since the last call: `+33612345678 Amélie Durand (updated)`. */
  poll(): string[] {
    const lines: string[] = [];
    for (const contact of this.store.contacts()) {
      const before = this.seen.get(contact.phone);
      if (before && before.writes === contact.writes) continue;
      const name = nameOf(contact);
      const what = !before ? 'new' : before.name === name ? 'sent again, nothing changed' : 'updated';
      lines.push(`${contact.phone} ${name} (${what})`);
      this.seen.set(contact.phone, { writes: contact.writes, name });
    }
    return lines;
  }
}

function nameOf(contact: ContactRecord): string {
  return [contact.first_name, contact.last_name].filter(Boolean).join(' ') || '(no name)';
}
