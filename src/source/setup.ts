import pg from 'pg';
import { editDistance, nearest } from '../config/suggest.js';
import type { Lsn } from '../domain.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseLsn } from '../lsn.js';

/** A problem with the source database that the user must fix: says what is wrong, on which object, and how. */
export class SourceError extends Error {
  override name = 'SourceError';
}

/** The replication slot is gone or invalidated: the changes it held are lost, only a full resync recovers. */
export class SlotLostError extends SourceError {
  override name = 'SlotLostError';
  constructor(
    readonly slot: string,
    readonly reason: string,
  ) {
    super(
      `Replication slot "${slot}" ${reason}, so changes made while it was behind can no longer be streamed. ` +
        'Run `verbose-sync --full-resync` to start over with a new slot and reload every row.',
    );
  }
}

/** Marks a publication as ours: only those are altered when the mapped tables change. */
export const MANAGED_PUBLICATION_COMMENT = 'managed by verbose-sync';

export interface PrepareSourceOptions {
  /** libpq URL of the CRM database. */
  url: string;
  slot: string;
  publication: string;
  /** The mapped tables as `schema.table`, each part exactly as named in the database (unquoted). */
  tables: readonly string[];
  /** The columns the mappings read, by table: each must be one that replication sends. */
  mappedColumns?: ReadonlyMap<string, readonly string[]>;
  /**
   * A slot found invalidated: `error` (the default) throws `SlotLostError`; `recreate` drops it and creates a
   * new one (for `--full-resync`, which reloads every row anyway).
   */
  lostSlot?: 'error' | 'recreate';
  /**
   * No slot at all: `create` (the default) makes one; `error` throws `SlotLostError`, for a deployment whose
   * checkpoint shows the slot existed: a new one would silently skip what changed while it was gone.
   */
  missingSlot?: 'create' | 'error';
  log?: Logger;
}

/** What `pg_replication_slots` says about a slot (columns missing on older servers are null). */
export interface SlotState {
  name: string;
  plugin: string | null;
  slotType: string | null;
  database: string | null;
  /** `reserved`, `extended`, `unreserved` or `lost`. */
  walStatus: string | null;
  /** PostgreSQL 17+: why the slot was invalidated. */
  invalidationReason: string | null;
  confirmedFlushLsn: Lsn | null;
  activePid: number | null;
}

export interface SourceReport {
  serverVersion: number;
  /** The slot did not exist and was created now: it starts at the current end of the WAL. */
  slotCreated: boolean;
  slot: SlotState;
  publicationCreated: boolean;
  /** The publication carries our marker, so verbose-sync keeps its table list equal to the mapped tables. */
  publicationManaged: boolean;
  /** Tables added to or removed from our publication now (`schema.table`). */
  publicationAdded: string[];
  publicationRemoved: string[];
  /** Per mapped table (`schema.table`): the primary key columns, else the replica identity columns. */
  keyColumns: Map<string, string[]>;
  /** Per mapped table: the columns that replication sends, in table order (generated columns are not sent). */
  columns: Map<string, string[]>;
}

/**
 * Checks that the CRM database can feed verbose-sync and creates what is missing: the publication for the
 * mapped tables (marked as ours) and the logical replication slot. Every problem is a `SourceError` that
 * names the object and the fix.
 */
export async function prepareSource(options: PrepareSourceOptions): Promise<SourceReport> {
  const client = new pg.Client({ connectionString: options.url, application_name: 'verbose-sync setup' });
  client.on('error', () => {}); // a dropped connection also rejects the query in progress
  await client.connect();
  try {
    return await prepare(client, options);
  } finally {
    await client.end().catch(() => {});
  }
}

async function prepare(client: pg.Client, options: PrepareSourceOptions): Promise<SourceReport> {
  const verified = await verifySource(client, options.tables);
  checkMappedColumns(verified.tables, options.mappedColumns);
  const tables = verified.tables.map((t) => t.name);
  const publication = await ensurePublication(client, options, tables);
  const slot = await ensureSlot(client, options, verified.database);
  return {
    serverVersion: verified.serverVersion,
    slotCreated: slot.created,
    slot: slot.state,
    publicationCreated: publication.created,
    publicationManaged: publication.managed,
    publicationAdded: publication.added,
    publicationRemoved: publication.removed,
    keyColumns: new Map(verified.tables.map((t) => [t.name, t.key])),
    columns: new Map(verified.tables.map((t) => [t.name, t.columns])),
  };
}

export interface VerifiedSource {
  serverVersion: number;
  database: string;
  tables: FoundTable[];
}

/**
 * The checks that change nothing: the server's version and wal_level, the role's right to replicate, and that
 * every mapped table exists with a key. `validate` runs these alone; a problem is a `SourceError` with the fix.
 */
export async function verifySource(
  client: pg.Client,
  mappedTables: readonly string[],
): Promise<VerifiedSource> {
  const { rows: settings } = await client.query<{ version: number; wal_level: string; database: string }>(
    `SELECT current_setting('server_version_num')::int AS version, current_setting('wal_level') AS wal_level,
            current_database()::text AS database`,
  );
  const { version, wal_level: walLevel, database } = settings[0]!;
  if (version < 140000) {
    throw new SourceError(
      `PostgreSQL ${Math.floor(version / 10000)} is too old: verbose-sync needs PostgreSQL 14 or newer ` +
        '(for logical decoding messages in pgoutput). Upgrade the server.',
    );
  }
  if (walLevel !== 'logical') {
    throw new SourceError(
      `The server's wal_level is "${walLevel}"; logical replication needs "logical". ` +
        'Set `wal_level = logical` in postgresql.conf or with ALTER SYSTEM SET wal_level = logical, ' +
        'and restart the server.',
    );
  }
  await checkRole(client);
  const tables = await checkTables(client, [...new Set(mappedTables.map(canonicalTableName))]);
  return { serverVersion: version, database, tables };
}

async function checkRole(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ name: string; super: boolean; replication: boolean; rds: boolean }>(
    `SELECT r.rolname::text AS name, r.rolsuper AS super, r.rolreplication AS replication,
            EXISTS (SELECT 1 FROM pg_roles g
                    WHERE g.rolname = 'rds_replication' AND pg_has_role(r.oid, g.oid, 'member')) AS rds
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const role = rows[0];
  if (role && !role.super && !role.replication && !role.rds) {
    throw new SourceError(
      `Role ${quoteIdent(role.name)} may not use replication. As a superuser, run: ` +
        `ALTER ROLE ${quoteIdent(role.name)} REPLICATION; (on Amazon RDS: GRANT rds_replication TO ${quoteIdent(role.name)};)`,
    );
  }
}

export interface FoundTable {
  name: string;
  key: string[];
  /** REPLICA IDENTITY FULL without a primary key: the key is every column. */
  wholeRowKey: boolean;
  columns: string[];
}

async function checkTables(client: pg.Client, tables: readonly string[]): Promise<FoundTable[]> {
  const problems: string[] = [];
  const found: FoundTable[] = [];
  let candidates: Promise<string[]> | undefined;
  const allTables = () => (candidates ??= listTables(client));
  for (const name of tables) {
    const table = await findTable(client, name, allTables);
    if ('problem' in table) problems.push(table.problem);
    else found.push(table);
  }
  if (problems.length > 0) throw new SourceError(problems.join('\n'));
  return found;
}

/**
 * A mapped table (`schema.table`) with the key its changes carry, or what keeps it from being replicated.
 * `allTables` lists the database's tables, to suggest a name when there is no such table.
 */
export async function findTable(
  client: pg.Client,
  name: string,
  allTables: () => Promise<string[]> = () => listTables(client),
): Promise<FoundTable | { problem: string }> {
  const { schema, table } = splitTableName(name);
  const { rows } = await client.query<{ oid: number; relkind: string; replident: string }>(
    `SELECT c.oid::int AS oid, c.relkind::text AS relkind, c.relreplident::text AS replident
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, table],
  );
  const rel = rows[0];
  if (!rel) {
    const close = closeNames(name, await allTables());
    return {
      problem:
        `Table ${name} does not exist` +
        (close.length > 0 ? `; did you mean ${close.join(' or ')}?` : ' (and no table has a similar name).') +
        (close.length > 0
          ? ''
          : " Check the mapping's table: schema.table, exactly as named in the database."),
    };
  }
  if (rel.relkind !== 'r' && rel.relkind !== 'p') {
    const kind =
      { v: 'a view', m: 'a materialized view', f: 'a foreign table' }[rel.relkind] ?? 'not a table';
    return {
      problem: `${name} is ${kind}; only tables can be replicated. Map the table it reads from instead.`,
    };
  }
  const columns = await replicatedColumns(client, rel.oid);
  const { rows: indexes } = await client.query<{ primary: boolean; replident: boolean; columns: string[] }>(
    `SELECT i.indisprimary AS primary, i.indisreplident AS replident,
            array_agg(a.attname::text ORDER BY k.ord) AS columns
       FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND (i.indisprimary OR i.indisreplident)
      GROUP BY i.indexrelid, i.indisprimary, i.indisreplident`,
    [rel.oid],
  );
  const primary = indexes.find((i) => i.primary)?.columns;
  const identityIndex = indexes.find((i) => i.replident)?.columns;
  const quoted = quoteTable(name);
  // The key is what a delete carries: the replica identity index, the primary key (DEFAULT), or with FULL
  // the whole old row, of which the primary key is the useful part.
  const key =
    rel.replident === 'f'
      ? (primary ?? columns)
      : rel.replident === 'i'
        ? identityIndex
        : rel.replident === 'd'
          ? primary
          : undefined;
  if (!key) {
    return {
      problem:
        rel.replident === 'n'
          ? `Table ${name} has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be replicated. ` +
            `Run: ALTER TABLE ${quoted} REPLICA IDENTITY DEFAULT; (with a primary key) or ALTER TABLE ${quoted} REPLICA IDENTITY FULL;`
          : `Table ${name} has no primary key (nor a usable replica identity), so its updates and deletes ` +
            `cannot be replicated (PostgreSQL refuses them once the table is published). Add a primary key, ` +
            `or run: ALTER TABLE ${quoted} REPLICA IDENTITY FULL;`,
    };
  }
  return { name, key, wholeRowKey: rel.replident === 'f' && !primary, columns };
}

/**
 * Before anything is created on the server: a mapped column that replication does not send would leave its
 * field empty in every change (a typo), or filled by a full resync only (a generated column).
 */
function checkMappedColumns(tables: readonly FoundTable[], mapped?: ReadonlyMap<string, readonly string[]>) {
  const problems: string[] = [];
  for (const table of tables) {
    for (const column of mapped?.get(table.name) ?? []) {
      if (table.columns.includes(column)) continue;
      const close = nearest(column, table.columns);
      problems.push(
        `Column ${JSON.stringify(column)} of ${table.name} is mapped but replication does not send it: there is ` +
          `no such column${close.length > 0 ? ` (did you mean ${close.join(' or ')}?)` : ''}, or it is a ` +
          'generated column. Run verbose-sync validate for the details.',
      );
    }
  }
  if (problems.length > 0) throw new SourceError(problems.join('\n'));
}

async function replicatedColumns(client: pg.Client, oid: number): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT attname::text AS name FROM pg_attribute
      WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
      ORDER BY attnum`,
    [oid],
  );
  return rows.map((r) => r.name);
}

/** Every user table of the database as `schema.table`. */
export async function listTables(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT n.nspname::text || '.' || c.relname::text AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

interface PublicationOutcome {
  created: boolean;
  managed: boolean;
  added: string[];
  removed: string[];
}

const PUBLISH = 'insert, update, delete, truncate';

async function ensurePublication(
  client: pg.Client,
  options: PrepareSourceOptions,
  tables: readonly string[],
): Promise<PublicationOutcome> {
  const name = options.publication;
  const quoted = quoteIdent(name);
  const tableList = tables.map(quoteTable).join(', ');
  let publication = await readPublication(client, name);
  if (!publication) {
    try {
      await client.query('BEGIN');
      await client.query(
        `CREATE PUBLICATION ${quoted} FOR TABLE ${tableList} WITH (publish = '${PUBLISH}', publish_via_partition_root = true)`,
      );
      await client.query(`COMMENT ON PUBLICATION ${quoted} IS '${MANAGED_PUBLICATION_COMMENT}'`);
      await client.query('COMMIT');
      options.log?.info({ publication: name, tables }, 'created the publication');
      return { created: true, managed: true, added: [...tables], removed: [] };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      // Another instance created it at the same moment: use theirs.
      if (sqlState(error) !== '42710') {
        throw new SourceError(
          `Could not create publication ${quoted}: ${errorMessage(error)}. Ask the database owner (or a superuser) ` +
            `to run: CREATE PUBLICATION ${quoted} FOR TABLE ${tableList}; COMMENT ON PUBLICATION ${quoted} IS '${MANAGED_PUBLICATION_COMMENT}';`,
        );
      }
      publication = await readPublication(client, name);
      if (!publication) throw error;
    }
  }

  if (publication.comment === MANAGED_PUBLICATION_COMMENT) {
    const { rows } = await client.query<{ name: string }>(
      `SELECT n.nspname::text || '.' || c.relname::text AS name
         FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE pr.prpubid = $1`,
      [publication.oid],
    );
    const current = new Set(rows.map((r) => r.name));
    const added = tables.filter((t) => !current.has(t));
    const removed = [...current].filter((t) => !tables.includes(t));
    const statements = [
      ...(added.length > 0
        ? [`ALTER PUBLICATION ${quoted} ADD TABLE ${added.map(quoteTable).join(', ')}`]
        : []),
      ...(removed.length > 0
        ? [`ALTER PUBLICATION ${quoted} DROP TABLE ${removed.map(quoteTable).join(', ')}`]
        : []),
      ...(publication.publishesAll ? [] : [`ALTER PUBLICATION ${quoted} SET (publish = '${PUBLISH}')`]),
    ];
    for (const statement of statements) {
      try {
        await client.query(statement);
      } catch (error) {
        throw new SourceError(
          `Could not update publication ${quoted} for the mapped tables: ${errorMessage(error)}. ` +
            `Ask its owner (or a superuser) to run: ${statement};`,
        );
      }
    }
    if (added.length > 0 || removed.length > 0) {
      options.log?.info(
        { publication: name, added, removed },
        'updated the publication for the mapped tables',
      );
    }
    return { created: false, managed: true, added, removed };
  }

  // Not ours: never alter it, but it must carry every mapped table and their inserts and updates.
  const { rows } = await client.query<{ name: string }>(
    `SELECT schemaname::text || '.' || tablename::text AS name FROM pg_publication_tables WHERE pubname = $1`,
    [name],
  );
  const covered = new Set(rows.map((r) => r.name));
  const missing = tables.filter((t) => !covered.has(t));
  if (missing.length > 0) {
    throw new SourceError(
      `Publication ${quoted} was not created by verbose-sync and does not include ${missing.join(', ')}. ` +
        `Run: ALTER PUBLICATION ${quoted} ADD TABLE ${missing.map(quoteTable).join(', ')}; ` +
        '(or set source.publication to a new name and verbose-sync will create its own).',
    );
  }
  if (!publication.insert || !publication.update) {
    throw new SourceError(
      `Publication ${quoted} does not publish ${[publication.insert ? '' : 'inserts', publication.update ? '' : 'updates'].filter(Boolean).join(' and ')}. ` +
        `Run: ALTER PUBLICATION ${quoted} SET (publish = '${PUBLISH}'); ` +
        '(or set source.publication to a new name and verbose-sync will create its own).',
    );
  }
  return { created: false, managed: false, added: [], removed: [] };
}

interface PublicationRow {
  oid: number;
  comment: string | null;
  insert: boolean;
  update: boolean;
  publishesAll: boolean;
}

async function readPublication(client: pg.Client, name: string): Promise<PublicationRow | undefined> {
  const { rows } = await client.query<PublicationRow>(
    `SELECT p.oid::int AS oid, obj_description(p.oid, 'pg_publication') AS comment,
            p.pubinsert AS insert, p.pubupdate AS update,
            p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate AS "publishesAll"
       FROM pg_publication p WHERE p.pubname = $1`,
    [name],
  );
  return rows[0];
}

async function ensureSlot(
  client: pg.Client,
  options: PrepareSourceOptions,
  database: string,
): Promise<{ created: boolean; state: SlotState }> {
  const name = options.slot;
  let state = await readSlot(client, name);
  if (!state && options.missingSlot === 'error') {
    throw new SlotLostError(
      name,
      'no longer exists although state_dir holds a checkpoint of it (it was dropped)',
    );
  }
  if (state) {
    if (state.slotType !== 'logical' || state.plugin !== 'pgoutput' || state.database !== database) {
      const what =
        state.slotType !== 'logical'
          ? 'is a physical slot'
          : state.database !== database
            ? `belongs to database "${state.database}"`
            : `uses the ${state.plugin} plugin`;
      throw new SourceError(
        `Replication slot "${name}" ${what}, but verbose-sync needs a pgoutput slot in database "${database}". ` +
          `Set source.slot to another name, or drop it if nothing uses it: SELECT pg_drop_replication_slot('${name}');`,
      );
    }
    const lost = slotLostReason(state);
    if (!lost) return { created: false, state };
    if (options.lostSlot !== 'recreate') throw new SlotLostError(name, lost);
    options.log?.warn(
      { slot: name, reason: lost },
      'dropping the invalidated replication slot to create a new one',
    );
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [name]);
    } catch (error) {
      throw new SourceError(
        `Could not drop the invalidated replication slot "${name}": ${errorMessage(error)}. ` +
          'Stop the other process that uses it, then try again.',
      );
    }
  }
  try {
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    options.log?.info({ slot: name }, 'created the replication slot');
  } catch (error) {
    const code = sqlState(error);
    if (code === '53400') {
      throw new SourceError(
        `Could not create replication slot "${name}": ${errorMessage(error)}. Raise max_replication_slots ` +
          '(and max_wal_senders) in postgresql.conf and restart the server, or drop a slot nothing uses.',
      );
    }
    if (code !== '42710') {
      throw new SourceError(`Could not create replication slot "${name}": ${errorMessage(error)}.`);
    }
    // Created by another instance at the same moment.
    state = await readSlot(client, name);
    if (!state) throw error;
    return { created: false, state };
  }
  state = await readSlot(client, name);
  if (!state) throw new SourceError(`Replication slot "${name}" vanished right after it was created.`);
  return { created: true, state };
}

/** One slot's row of `pg_replication_slots` as JSON (`$1`: its name), for `slotState`. */
export const SLOT_SQL = 'SELECT to_jsonb(s) AS s FROM pg_replication_slots s WHERE slot_name = $1';

/** The slot as `pg_replication_slots` shows it, or undefined when there is no such slot. */
export async function readSlot(client: pg.ClientBase, slot: string): Promise<SlotState | undefined> {
  const { rows } = await client.query<{ s: Record<string, unknown> }>(SLOT_SQL, [slot]);
  return rows[0] ? slotState(rows[0].s) : undefined;
}

/** Builds a `SlotState` from a `to_jsonb` row of `pg_replication_slots` (any server version). */
export function slotState(row: Record<string, unknown>): SlotState {
  const str = (key: string) => (typeof row[key] === 'string' ? (row[key] as string) : null);
  const lsn = str('confirmed_flush_lsn');
  return {
    name: str('slot_name') ?? '',
    plugin: str('plugin'),
    slotType: str('slot_type'),
    database: str('database'),
    walStatus: str('wal_status'),
    invalidationReason:
      str('invalidation_reason') ?? (row.conflicting === true ? 'conflict with recovery' : null),
    confirmedFlushLsn: lsn ? parseLsn(lsn) : null,
    activePid: typeof row.active_pid === 'number' ? row.active_pid : null,
  };
}

/** Why the slot can no longer stream (`was invalidated (…)`), or undefined when it can. */
export function slotLostReason(state: SlotState): string | undefined {
  if (state.walStatus === 'lost' || state.invalidationReason) {
    return `was invalidated (${state.invalidationReason ?? 'the WAL it needed was removed'})`;
  }
  return undefined;
}

/** `public.person` → `{ schema: 'public', table: 'person' }`; a name without a schema is in `public`. */
export function splitTableName(name: string): { schema: string; table: string } {
  const dot = name.indexOf('.');
  return dot < 0
    ? { schema: 'public', table: name }
    : { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

/** `person` → `public.person`: the form `RowChange.table` and the report's maps use. */
export function canonicalTableName(name: string): string {
  const { schema, table } = splitTableName(name);
  return `${schema}.${table}`;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `public.Person` → `"public"."Person"`. */
export function quoteTable(name: string): string {
  const { schema, table } = splitTableName(name);
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/**
 * Names from `candidates` that look like `name`: the same ignoring case, the same table in another schema,
 * then plausible typos; at most `max`, closest first.
 */
export function closeNames(name: string, candidates: readonly string[], max = 3): string[] {
  const wanted = name.toLowerCase();
  const wantedTable = splitTableName(name).table.toLowerCase();
  const scored: { candidate: string; score: number }[] = [];
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    const table = splitTableName(candidate).table.toLowerCase();
    let score: number;
    if (lower === wanted) score = 0;
    else if (table === wantedTable) score = 1;
    else {
      const distance = Math.min(editDistance(wanted, lower), editDistance(wantedTable, table));
      if (distance > Math.max(2, Math.floor(wantedTable.length / 3))) continue;
      score = 1 + distance;
    }
    scored.push({ candidate, score });
  }
  return scored
    .sort((a, b) => a.score - b.score || a.candidate.localeCompare(b.candidate))
    .slice(0, max)
    .map((s) => s.candidate);
}

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
