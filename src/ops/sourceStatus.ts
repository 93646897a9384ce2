import pg from 'pg';

/** The replication slot as the server sees it. */
export interface SlotStatus {
  name: string;
  plugin: string | null;
  /** A walsender is streaming from it now. */
  active: boolean;
  /** That walsender's server process id. */
  activePid: number | null;
  /** Who it streams to, when the role may see pg_stat_replication. */
  application: string | null;
  clientAddress: string | null;
  /** reserved, extended, unreserved or lost (PostgreSQL 13+). */
  walStatus: string | null;
  confirmedFlushLsn: string | null;
  serverLsn: string | null;
  /** Bytes of WAL between the server's position and what verbose-sync acknowledged. */
  lagBytes: number | null;
  /** Bytes of WAL the server keeps on disk for this slot. */
  retainedBytes: number | null;
}

export interface PublicationStatus {
  name: string;
  tables: string[];
}

/** What `verbose-sync status` reads from the database. */
export interface SourceStatus {
  database: string;
  serverVersion: string;
  walLevel: string;
  /** Undefined when the slot does not exist. */
  slot: SlotStatus | undefined;
  publication: PublicationStatus | undefined;
}

const SLOT_SQL = `
SELECT s.slot_name::text AS name, s.plugin::text AS plugin, s.active, s.active_pid,
       r.application_name::text AS application, host(r.client_addr) AS client_address,
       s.wal_status, s.confirmed_flush_lsn::text AS confirmed, w.lsn::text AS server_lsn,
       pg_wal_lsn_diff(w.lsn, s.confirmed_flush_lsn)::float8 AS lag,
       pg_wal_lsn_diff(w.lsn, s.restart_lsn)::float8 AS retained
  FROM pg_replication_slots s
 CROSS JOIN (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                         ELSE pg_current_wal_lsn() END AS lsn) w
  LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
 WHERE s.slot_name = $1`;

const PUBLICATION_SQL = `
SELECT p.pubname::text AS name,
       ARRAY(SELECT t.schemaname || '.' || t.tablename FROM pg_publication_tables t
              WHERE t.pubname = p.pubname ORDER BY 1) AS tables
  FROM pg_publication p
 WHERE p.pubname = $1`;

/**
 * Reads the slot and the publication with an ordinary (not a replication) connection, so it works while the
 * daemon streams. Rejects when the database cannot be reached.
 */
export async function readSourceStatus(options: {
  url: string;
  slot: string;
  publication: string;
  timeoutMs?: number;
}): Promise<SourceStatus> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const client = new pg.Client({
    connectionString: options.url,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: 'verbose-sync status',
  });
  // A connection lost mid-query is reported by the query itself.
  client.on('error', () => {});
  await client.connect();
  try {
    const server = await client.query<{ database: string; version: string; wal_level: string }>(
      `SELECT current_database()::text AS database, current_setting('server_version') AS version,
              current_setting('wal_level') AS wal_level`,
    );
    const slot = await client.query<{
      name: string;
      plugin: string | null;
      active: boolean;
      active_pid: number | null;
      application: string | null;
      client_address: string | null;
      wal_status: string | null;
      confirmed: string | null;
      server_lsn: string | null;
      lag: number | null;
      retained: number | null;
    }>(SLOT_SQL, [options.slot]);
    const publication = await client.query<{ name: string; tables: string[] }>(PUBLICATION_SQL, [
      options.publication,
    ]);
    const info = server.rows[0]!;
    const s = slot.rows[0];
    return {
      database: info.database,
      serverVersion: info.version,
      walLevel: info.wal_level,
      slot: s && {
        name: s.name,
        plugin: s.plugin,
        active: s.active,
        activePid: s.active_pid,
        application: s.application,
        clientAddress: s.client_address,
        walStatus: s.wal_status,
        confirmedFlushLsn: s.confirmed,
        serverLsn: s.server_lsn,
        lagBytes: s.lag,
        retainedBytes: s.retained,
      },
      publication: publication.rows[0],
    };
  } finally {
    await client.end().catch(() => {});
  }
}
