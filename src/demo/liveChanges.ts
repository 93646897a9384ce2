import type pg from 'pg';
import type { PeopleFactory, Random } from './people.js';
import type { SampleCrm } from './sampleCrm.js';

type ChangeKind = 'rename' | 'insert' | 'typo' | 'respell' | 'twice' | 'archive';

/** The order the demo goes through its kinds of change, then again. */
const SEQUENCE: readonly ChangeKind[] = ['rename', 'insert', 'typo', 'respell', 'twice', 'insert', 'archive'];

export interface LiveChangesOptions {
  sql: pg.Client;
  factory: PeopleFactory;
  random: Random;
  crm: SampleCrm;
  /** Prints one line about the change just committed. */
  say: (line: string) => void;
}

/** Commits one CRM change at a time, of the kinds a CRM sees all day, and says what it did. */
export class LiveChanges {
  /** Changes committed so far. */
  made = 0;
  /** Rows inserted so far. */
  inserted = 0;
  private readonly contactIds: number[];
  private readonly typos: SampleCrm['typos'];

  constructor(private readonly options: LiveChangesOptions) {
    this.contactIds = [...options.crm.contactIds];
    this.typos = [...options.crm.typos];
  }

  async next(): Promise<void> {
    const kind = SEQUENCE[this.made % SEQUENCE.length]!;
    this.made += 1;
    switch (kind) {
      case 'rename':
        return this.rename();
      case 'insert':
        return this.insert();
      case 'typo':
        return this.typos.length > 0 ? this.fixTypo() : this.rename();
      case 'respell':
        return this.respell();
      case 'twice':
        return this.twice();
      case 'archive':
        return this.archive();
    }
  }

  private async rename(): Promise<void> {
    const partner = await this.somePerson();
    if (!partner) return;
    const name = married(partner.name, this.options.factory.person().name);
    await this.options.sql.query('UPDATE res_partner SET name = $2, write_date = now() WHERE id = $1', [
      partner.id,
      name,
    ]);
    this.options.say(`UPDATE partner ${partner.id}: name "${partner.name}" → "${name}"`);
  }

  private async insert(): Promise<void> {
    const person = this.options.factory.person();
    const { rows } = await this.options.sql.query<{ id: number }>(
      `INSERT INTO res_partner (name, email, phone, mobile, country_code, city)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [person.name, person.email, person.phone, person.mobile, person.country, person.city],
    );
    const id = rows[0]!.id;
    this.contactIds.push(id);
    this.inserted += 1;
    const phone = person.mobile ? `mobile "${person.mobile}"` : `phone "${person.phone}"`;
    this.options.say(`INSERT partner ${id}: ${person.name} (${person.country}), ${phone}`);
  }

  private async fixTypo(): Promise<void> {
    const typo = this.typos.shift()!;
    const { rows } = await this.options.sql.query<{ mobile: string }>(
      'SELECT mobile FROM res_partner WHERE id = $1',
      [typo.id],
    );
    await this.options.sql.query('UPDATE res_partner SET mobile = $2, write_date = now() WHERE id = $1', [
      typo.id,
      typo.meant,
    ]);
    this.contactIds.push(typo.id);
    this.options.say(
      `UPDATE partner ${typo.id}: mobile "${rows[0]?.mobile ?? ''}" → "${typo.meant}" ` +
        `(a typo fixed: ${typo.name} was set aside as a reject until now)`,
    );
  }

  private async respell(): Promise<void> {
    const partner = await this.somePerson();
    if (!partner?.mobile) return this.rename();
    const compact = partner.mobile.replace(/[\s.\-()/]/g, '');
    const spelled = compact === partner.mobile ? spaced(partner.mobile) : compact;
    await this.options.sql.query('UPDATE res_partner SET mobile = $2, write_date = now() WHERE id = $1', [
      partner.id,
      spelled,
    ]);
    this.options.say(
      `UPDATE partner ${partner.id}: mobile "${partner.mobile}" → "${spelled}" (the same number spelled ` +
        'differently: still one contact, and no request, Verbose has it already)',
    );
  }

  private async twice(): Promise<void> {
    const partner = await this.somePerson();
    if (!partner) return;
    const first = married(partner.name, this.options.factory.person().name);
    const second = married(partner.name, this.options.factory.person().name);
    const { sql } = this.options;
    await sql.query('BEGIN');
    try {
      await sql.query('UPDATE res_partner SET name = $2 WHERE id = $1', [partner.id, first]);
      await sql.query('UPDATE res_partner SET name = $2, write_date = now() WHERE id = $1', [
        partner.id,
        second,
      ]);
      await sql.query('COMMIT');
    } catch (error) {
      await sql.query('ROLLBACK').catch(() => {});
      throw error;
    }
    this.options.say(
      `UPDATE partner ${partner.id} twice in one transaction: "${first}", then "${second}" ` +
        '(merged: one upsert reaches Verbose)',
    );
  }

  private async archive(): Promise<void> {
    const partner = await this.somePerson();
    if (!partner) return;
    this.contactIds.splice(this.contactIds.indexOf(partner.id), 1);
    await this.options.sql.query('UPDATE res_partner SET active = false, write_date = now() WHERE id = $1', [
      partner.id,
    ]);
    this.options.say(
      `UPDATE partner ${partner.id}: ${partner.name} archived (active = false): no longer sent, ` +
        'Verbose keeps the contact',
    );
  }

  private async somePerson(): Promise<{ id: number; name: string; mobile: string | null } | undefined> {
    if (this.contactIds.length === 0) return undefined;
    const id = this.options.random.pick(this.contactIds);
    const { rows } = await this.options.sql.query<{ id: number; name: string; mobile: string | null }>(
      'SELECT id, name, mobile FROM res_partner WHERE id = $1',
      [id],
    );
    return rows[0];
  }
}

/** "Amélie Durand" marrying someone named "Lucas Roux" → "Amélie Durand-Roux" (a former double name is replaced). */
function married(name: string, partnerName: string): string {
  const [first = name, ...rest] = name.split(' ');
  const maiden = rest.join(' ').split('-')[0] ?? '';
  const partnerLast = partnerName.split(' ').slice(1).join(' ');
  if (partnerLast === '' || partnerLast === maiden) return `${first} ${maiden}`.trim();
  return `${first} ${maiden}-${partnerLast}`;
}

/** "0612345678" → "06 12 34 56 78"; other digits in groups of three. */
function spaced(phone: string): string {
  const plus = phone.startsWith('+') ? '+' : '';
  const digits = phone.replace(/\D/g, '');
  const group = digits.length === 10 ? 2 : 3;
  return plus + (digits.match(new RegExp(`.{1,${group}}`, 'g')) ?? [digits]).join(' ');
}
