import pg from 'pg';
import { phoneOfId } from './people.js';

export interface WriterTally {
  transactions: number;
  renames: number;
  phoneChanges: number;
  inserts: number;
  deletes: number;
}

/**
 * Another CRM user, writing `people` in small transactions on its own connection until stopped: renames,
 * some phone changes (to numbers no other row has), inserts and deletes, chosen by `random`.
 */
export class ConcurrentWriter {
  readonly tally: WriterTally = { transactions: 0, renames: 0, phoneChanges: 0, inserts: 0, deletes: 0 };
  private stopped = false;
  private loop: Promise<void> | undefined;
  private client: pg.Client | undefined;

  constructor(
    private readonly url: string,
    private readonly random: () => number,
    /** Ids 1…maxId are candidates for updates and deletes. */
    private readonly maxId: number,
    /**
     * Where the resync reads now (the key its current chunk starts after): half the writes land just ahead of
     * it, inside the chunks being read, where a stale chunk row would overwrite a newer change.
     */
    private readonly focus: () => number = () => 0,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client(this.url);
    await client.connect();
    this.client = client;
    this.loop = this.run(client);
  }

  /** Stops after the transaction in progress; rejects if a write failed. */
  async stop(): Promise<WriterTally> {
    this.stopped = true;
    try {
      await this.loop;
    } finally {
      await this.client?.end();
    }
    return this.tally;
  }

  private async run(client: pg.Client): Promise<void> {
    let phones = 0;
    while (!this.stopped) {
      const statements: string[] = [];
      const size = 1 + Math.floor(this.random() * 3);
      for (let i = 0; i < size; i++) {
        const near = this.random() < 0.5;
        const id = near
          ? Math.min(this.maxId, this.focus() + 1 + Math.floor(this.random() * 20_000))
          : 1 + Math.floor(this.random() * this.maxId);
        const pick = this.random();
        if (pick < 0.6) {
          statements.push(
            `UPDATE people SET name = 'Renamed${this.tally.transactions} Person${id}' WHERE id = ${id}`,
          );
          this.tally.renames++;
        } else if (pick < 0.75) {
          // Another area code than the ids' phones: a changed phone never meets another row's.
          const n = phones++;
          statements.push(
            `UPDATE people SET mobile = '+1213' || (520 + ${n} / 10000)::text || lpad((${n} % 10000)::text, 4, '0'),
                               name = 'Moved${n} Person${id}' WHERE id = ${id}`,
          );
          this.tally.phoneChanges++;
        } else if (pick < 0.9) {
          statements.push(
            `INSERT INTO people (id, name, mobile) SELECT v, 'Newcomer' || v || ' Person', ${phoneOfId('v')}
               FROM nextval('people_id_seq') v`,
          );
          this.tally.inserts++;
        } else {
          statements.push(`DELETE FROM people WHERE id = ${id}`);
          this.tally.deletes++;
        }
      }
      await client.query(`BEGIN; ${statements.join('; ')}; COMMIT`);
      this.tally.transactions++;
    }
  }
}
