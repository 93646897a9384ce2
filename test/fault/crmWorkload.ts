/**
 * A random but replayable stream of CRM writes to `people (id, name, mobile)`, mapped as
 * `phone: mobile, first_name: name`, together with the contacts Verbose must end up holding.
 *
 * Verbose has no delete, and a phone change makes a new contact while the old one stays, so the expected set
 * is every phone any committed row version had, with the name of the newest committed version that had it.
 * Each phone is given to one row only, ever, so that rule needs no knowledge of the order in which the server
 * applies the rows of one statement.
 */
export const CRM_SCHEMA =
  'CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, mobile text NOT NULL)';

export const CRM_MAPPINGS = `
mappings:
  - table: public.people
    list: Fault people
    fields: { phone: mobile, first_name: name }`;

/** Real US area codes: libphonenumber accepts every 555-xxxx number in them. */
const AREA_CODES = ['212', '646', '718', '917', '347', '202', '415', '312'];

export interface Transaction {
  /** Statements run as one simple query, between BEGIN and COMMIT. */
  sql: string;
  /** Row changes the server streams for it. */
  changes: number;
}

export class CrmWorkload {
  /** phone → the name of the newest committed version that had it. */
  readonly expected = new Map<string, string>();
  private readonly rows = new Map<number, { phone: string; name: string }>();
  /** Ids of live rows, for picking one at random; `slots` says where each sits. */
  private readonly ids: number[] = [];
  private readonly slots = new Map<number, number>();
  /**
   * Rows that existed before the replication slot: their first version reaches Verbose only through the
   * first start's full resync, which reads a row as it is when it gets there. Deleting one or changing its
   * phone before then would take a phone out of reach that the expected set still holds, so they only get
   * new names (which keep the phone and travel through the stream).
   */
  private readonly initial = new Set<number>();
  private nextId = 1;
  private nextPhone = 0;
  private version = 0;

  constructor(private readonly random: () => number) {}

  /** Rows inserted before the daemon's first start. */
  initialRows(count: number): string {
    const values: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.insert();
      this.initial.add(id);
      values.push(this.values(id));
    }
    return `INSERT INTO people (id, name, mobile) VALUES ${values.join(', ')}`;
  }

  /** A transaction of `changes` random inserts, renames, phone changes and deletes. */
  transaction(changes: number): Transaction {
    const statements: string[] = [];
    for (let i = 0; i < changes; i++) statements.push(this.change());
    return { sql: wrap(statements), changes };
  }

  /** One transaction of `rows` changes: live rows renamed in one UPDATE (up to 5 in 6), the rest inserted. */
  bigTransaction(rows: number): Transaction {
    const tag = `big${++this.version}`;
    const renamed = this.ids.slice(0, Math.floor((rows * 5) / 6));
    const inserts = rows - renamed.length;
    for (const id of renamed) this.rename(id, `${tag}_${id}`);
    const values: string[] = [];
    for (let i = 0; i < inserts; i++) values.push(this.values(this.insert()));
    return {
      sql: wrap([
        `UPDATE people SET name = '${tag}_' || id WHERE id = ANY('{${renamed.join(',')}}'::int[])`,
        `INSERT INTO people (id, name, mobile) VALUES ${values.join(', ')}`,
      ]),
      changes: renamed.length + inserts,
    };
  }

  private change(): string {
    const roll = this.random();
    const mutable = this.ids.length - this.initial.size;
    if (this.ids.length < 50 || roll < 0.25) return `INSERT INTO people VALUES ${this.values(this.insert())}`;
    if (roll < 0.7 || mutable < 20) {
      const id = this.pick();
      const name = `n${++this.version}`;
      this.rename(id, name);
      return `UPDATE people SET name = '${name}' WHERE id = ${id}`;
    }
    const id = this.pickMutable();
    if (roll < 0.9) {
      const row = this.rows.get(id)!;
      row.phone = this.freshPhone();
      this.expected.set(row.phone, row.name);
      return `UPDATE people SET mobile = '${row.phone}' WHERE id = ${id}`;
    }
    this.remove(id);
    return `DELETE FROM people WHERE id = ${id}`;
  }

  private insert(): number {
    const id = this.nextId++;
    const row = { phone: this.freshPhone(), name: `n${++this.version}` };
    this.rows.set(id, row);
    this.slots.set(id, this.ids.length);
    this.ids.push(id);
    this.expected.set(row.phone, row.name);
    return id;
  }

  private rename(id: number, name: string): void {
    const row = this.rows.get(id)!;
    row.name = name;
    this.expected.set(row.phone, name);
  }

  private remove(id: number): void {
    const slot = this.slots.get(id)!;
    const last = this.ids.pop()!;
    if (last !== id) {
      this.ids[slot] = last;
      this.slots.set(last, slot);
    }
    this.slots.delete(id);
    this.rows.delete(id);
  }

  private pick(): number {
    return this.ids[Math.floor(this.random() * this.ids.length)]!;
  }

  private pickMutable(): number {
    for (;;) {
      const id = this.pick();
      if (!this.initial.has(id)) return id;
    }
  }

  private values(id: number): string {
    const row = this.rows.get(id)!;
    return `(${id}, '${row.name}', '${row.phone}')`;
  }

  private freshPhone(): string {
    const n = this.nextPhone++;
    const area = AREA_CODES[Math.floor(n / 10_000)];
    if (!area) throw new Error('the workload ran out of phone numbers');
    return `+1${area}555${String(n % 10_000).padStart(4, '0')}`;
  }
}

function wrap(statements: string[]): string {
  return `BEGIN; ${statements.join('; ')}; COMMIT`;
}
