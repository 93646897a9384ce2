import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  name: string;
  /** A libpq URL for this database. */
  url: string;
  /** An open client on it, for arranging rows; closed by `drop()`. */
  sql: pg.Client;
  /** Runs statements in their own committed transaction (replication only sees committed rows). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file, on the run's PostgreSQL. `drop()` removes it together with the
 * replication slots it holds; a failing file's database is kept when KEEP_TEST_DATABASES is set.
 */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const serverUrl = inject('postgresUrl');
  const name = `${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const sql = new pg.Client(url.toString());
  await sql.connect();
  return {
    name,
    url: url.toString(),
    sql,
    query: (text, values) => sql.query(text, values),
    async drop() {
      await sql.end();
      if (process.env.KEEP_TEST_DATABASES) return;
      const admin = new pg.Client(serverUrl);
      await admin.connect();
      try {
        await admin.query(
          `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
          [name],
        );
        await admin.query(
          `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`,
          [name],
        );
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
