import pg from 'pg';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../../src/embedded/embeddedPostgres.js';
import type { TestDatabase } from '../../harness/database.js';

/**
 * A PostgreSQL of the test's own, for server settings the shared test server must not have (synchronous
 * replication to a standby that never answers, say). Costs a server start: use it only where that is the point.
 */
export async function startDedicatedServer(
  settings: Record<string, string>,
): Promise<{ server: EmbeddedPostgres; db: TestDatabase }> {
  const server = await startEmbeddedPostgres({ settings });
  const name = 'crm';
  await server.createDatabase(name);
  const url = server.url(name);
  const sql = new pg.Client(url);
  await sql.connect();
  const db: TestDatabase = {
    name,
    url,
    sql,
    query: (text, values) => sql.query(text, values),
    async drop() {
      await sql.end();
      await server.stop();
    },
  };
  return { server, db };
}
