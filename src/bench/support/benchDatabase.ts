import pg from 'pg';
import type { EmbeddedPostgres } from '../../embedded/embeddedPostgres.js';

export const PUBLICATION = 'bench';

/**
 * One CRM database for one scenario: a `contacts` table whose row `id` has the phone `+1 212 200 0000 + id`
 * (a valid New York number, so every row maps), the publication, and server-side procedures that write the
 * changes quickly enough that the writer is never what is measured.
 */
export class BenchDatabase {
  private constructor(
    readonly name: string,
    readonly url: string,
    readonly sql: pg.Client,
    private readonly postgres: EmbeddedPostgres,
  ) {}

  static async create(postgres: EmbeddedPostgres, name: string): Promise<BenchDatabase> {
    const admin = new pg.Client(postgres.url());
    await admin.connect();
    try {
      await dropDatabase(admin, name);
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const url = postgres.url(name);
    const sql = new pg.Client(url);
    // A server stopped under it (Ctrl-C) must fail the next query, not crash the process from an event.
    sql.on('error', () => {});
    await sql.connect();
    const database = new BenchDatabase(name, url, sql, postgres);
    await sql.query(SCHEMA);
    return database;
  }

  /** Slots made before the changes are written, so each consumer is handed exactly the same changes. */
  async createSlots(...slots: string[]): Promise<void> {
    for (const slot of slots) {
      await this.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    }
  }

  /** Inserts rows `firstId … firstId + count - 1`, `perTransaction` rows per committed transaction. */
  async insert(firstId: number, count: number, perTransaction: number): Promise<void> {
    await this.sql.query('CALL bench_insert($1, $2, $3)', [firstId, count, perTransaction]);
  }

  /**
   * `rounds` passes over rows `1 … phones`, each setting `first_name` to `Round <n>`, `perTransaction` rows per
   * committed transaction: `rounds × phones` changes to `phones` phones.
   */
  async rewrite(phones: number, rounds: number, perTransaction: number): Promise<void> {
    await this.sql.query('CALL bench_rewrite($1, $2, $3)', [phones, rounds, perTransaction]);
  }

  /** Bytes of WAL the server keeps for the slot: what it has written beyond what the slot confirmed. */
  async walWaiting(slot: string): Promise<number> {
    const { rows } = await this.sql.query<{ bytes: number | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS bytes
         FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    return rows[0]?.bytes ?? 0;
  }

  async drop(): Promise<void> {
    await this.sql.end().catch(() => {});
    const admin = new pg.Client(this.postgres.url());
    await admin.connect();
    try {
      await dropDatabase(admin, this.name);
    } finally {
      await admin.end();
    }
  }
}

/** The phone of row `id` (below 8,000,000: a valid New York number), as the CRM and the simulator hold it. */
export function phoneOf(id: number): string {
  return `+1212${2_000_000 + id}`;
}

async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  await admin.query(
    'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL',
    [name],
  );
  await admin.query(
    'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1',
    [name],
  );
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

const SCHEMA = `
CREATE TABLE contacts (
  id bigint PRIMARY KEY,
  phone text NOT NULL,
  first_name text,
  last_name text,
  source text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE PUBLICATION ${PUBLICATION} FOR TABLE contacts;

CREATE PROCEDURE bench_insert(first_id bigint, total bigint, per_transaction bigint) LANGUAGE plpgsql AS $$
DECLARE
  next_id bigint := first_id;
BEGIN
  WHILE next_id < first_id + total LOOP
    INSERT INTO contacts (id, phone, first_name, last_name, source)
      SELECT i, '+1212' || (2000000 + i), 'Ada', 'Lovelace ' || i, 'crm'
        FROM generate_series(next_id, LEAST(next_id + per_transaction, first_id + total) - 1) AS i;
    COMMIT;
    next_id := next_id + per_transaction;
  END LOOP;
END $$;

CREATE PROCEDURE bench_rewrite(phones bigint, rounds int, per_transaction bigint) LANGUAGE plpgsql AS $$
DECLARE
  next_id bigint;
BEGIN
  FOR round IN 1..rounds LOOP
    next_id := 1;
    WHILE next_id <= phones LOOP
      UPDATE contacts SET first_name = 'Round ' || round, updated_at = now()
       WHERE id >= next_id AND id < LEAST(next_id + per_transaction, phones + 1);
      COMMIT;
      next_id := next_id + per_transaction;
    END LOOP;
  END LOOP;
END $$;
`;
