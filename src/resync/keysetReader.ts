import type { CustomTypesConfig, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import type { Row, RowChange } from '../domain.js';
import { quoteIdent } from '../source/setup.js';
import { TYPE_LOOKUP_SQL, TypeDecoders, type TypeInfo } from '../source/values.js';

/**
 * What the resync needs from PostgreSQL: a `pg.Pool` (or a connected `pg.Client`) fits. Its sessions should
 * use the replication session's settings (`DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`,
 * `extra_float_digits=1`) so that values print, and so decode, exactly as in the stream.
 */
export interface Sql {
  query<R extends QueryResultRow = QueryResultRow>(config: QueryConfig): Promise<QueryResult<R>>;
}

export interface KeyColumn {
  name: string;
  /** `format_type` of the column, for the cast of the last key's value. */
  type: string;
  /** The column's collation when it is not its type's default (qualified and quoted), else null. */
  collation: string | null;
}

/** A table as the resync reads it: where it is and which unique, not-null columns order it. */
export interface TableShape {
  /** `schema.table`, as named in the database (unquoted), like `RowChange.table`. */
  table: string;
  /** `"schema"."table"`, ready for SQL. */
  sql: string;
  key: readonly KeyColumn[];
  keyColumns: readonly string[];
  /** The columns read: the key and those the mappings use (a wide CRM row is not held whole); all when unset. */
  columns?: readonly string[] | undefined;
}

export interface KeyRange {
  after: Row | null;
  until: Row | null;
}

/** How the backfill reads tables; `KeysetReader` is the real one, tests wrap it to count or interleave writes. */
export interface ChunkReader {
  describe(table: string, keyColumns?: readonly string[], columns?: readonly string[]): Promise<TableShape>;
  estimateRows(shape: TableShape): Promise<number>;
  /** The greatest key in the table now, or null when it is empty. */
  lastKey(shape: TableShape): Promise<Row | null>;
  /**
   * Up to `limit` rows in key order with a key greater than `after` (from the first when null) and at most
   * `until` (to the last when null).
   */
  readChunk(shape: TableShape, range: KeyRange, limit: number): Promise<RowChange[]>;
}

/**
 * Keyset pagination over the primary key (or the replica identity index, which is what the stream's keys are
 * made of): `WHERE (k1, k2) > ($1, $2) ORDER BY k1, k2 LIMIT n`, an index range scan whatever the offset.
 */
export class KeysetReader implements ChunkReader {
  /** The stream's decoders (a reader of their own), so that a row read here equals the same row streamed. */
  private readonly decoders: TypeDecoders;

  constructor(private readonly sql: Sql) {
    this.decoders = new TypeDecoders(
      async (oids) => (await sql.query<TypeInfo>({ text: TYPE_LOOKUP_SQL, values: [oids] })).rows,
    );
  }

  async describe(
    table: string,
    keyColumns?: readonly string[],
    columns?: readonly string[],
  ): Promise<TableShape> {
    const { rows: found } = await this.sql.query<{
      oid: number;
      schema: string;
      name: string;
      replident: string;
    }>({
      text: `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relreplident::text AS replident
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname || '.' || c.relname = $1 AND c.relkind IN ('r', 'p')`,
      values: [table],
    });
    if (found.length === 0) {
      throw new Error(
        `table ${table} does not exist (or is not a table); check the mapping's table name: schema.table, exactly as in the database`,
      );
    }
    if (found.length > 1) {
      throw new Error(`table name ${table} is ambiguous (names with dots); rename the schema or table`);
    }
    const relation = found[0]!;
    const key = keyColumns
      ? await this.namedColumns(relation.oid, table, keyColumns)
      : await this.identityColumns(relation.oid, table, relation.replident);
    return {
      table,
      sql: `${quoteIdent(relation.schema)}.${quoteIdent(relation.name)}`,
      key,
      keyColumns: key.map((k) => k.name),
      columns: columns && [...new Set([...key.map((k) => k.name), ...columns])],
    };
  }

  async estimateRows(shape: TableShape): Promise<number> {
    const { rows } = await this.sql.query<{ estimate: string }>({
      text: `SELECT reltuples::text AS estimate FROM pg_class WHERE oid = $1::regclass`,
      values: [shape.sql],
    });
    const estimate = Number(rows[0]?.estimate ?? -1);
    // -1: never vacuumed or analyzed, the planner knows nothing yet.
    if (estimate >= 0) return Math.round(estimate);
    const counted = await this.sql.query<{ count: string }>({
      text: `SELECT count(*)::text AS count FROM ${shape.sql}`,
    });
    return Number(counted.rows[0]?.count ?? 0);
  }

  async lastKey(shape: TableShape): Promise<Row | null> {
    const columns = shape.key.map((k) => quoteIdent(k.name));
    const rows = await this.select(
      `SELECT ${columns.join(', ')} FROM ${shape.sql} ORDER BY ${columns.map((c) => `${c} DESC`).join(', ')} LIMIT 1`,
      [],
    );
    return rows[0] ?? null;
  }

  async readChunk(shape: TableShape, range: KeyRange, limit: number): Promise<RowChange[]> {
    const columns = `(${shape.key.map((k) => quoteIdent(k.name)).join(', ')})`;
    const conditions: string[] = [];
    const values: unknown[] = [];
    const bound = (key: Row) => {
      const params = shape.key.map((k) => {
        values.push(keyParameter(key, k.name));
        return `$${values.length}::${k.type}${k.collation ? ` COLLATE ${k.collation}` : ''}`;
      });
      return `(${params.join(', ')})`;
    };
    if (range.after) conditions.push(`${columns} > ${bound(range.after)}`);
    if (range.until) conditions.push(`${columns} <= ${bound(range.until)}`);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = shape.key.map((k) => quoteIdent(k.name)).join(', ');
    const rows = await this.select(
      `SELECT ${selected(shape)} FROM ${shape.sql} ${where} ORDER BY ${order} LIMIT ${Math.max(1, Math.floor(limit))}`,
      values,
    );
    return rows.map((row) => readChange(shape, row));
  }

  /** The row with this key as it is now, or undefined when it no longer exists (for `rejects --retry`). */
  async readByKey(shape: TableShape, key: Row): Promise<RowChange | undefined> {
    const values: unknown[] = [];
    const conditions = shape.key.map((k) => {
      values.push(keyParameter(key, k.name));
      return `${quoteIdent(k.name)} = $${values.length}::${k.type}`;
    });
    const rows = await this.select(
      `SELECT ${selected(shape)} FROM ${shape.sql} WHERE ${conditions.join(' AND ')}`,
      values,
    );
    return rows[0] && readChange(shape, rows[0]);
  }

  /** Rows as text, decoded by column type like the stream's, never through pg's global (lossy) parsers. */
  private async select(text: string, values: unknown[]): Promise<Row[]> {
    const result = await this.sql.query<Record<string, string | null>>({ text, values, types: RAW_TEXT });
    await this.decoders.resolve(result.fields.map((f) => f.dataTypeID));
    const columns = result.fields.map((f) => ({ name: f.name, decode: this.decoders.get(f.dataTypeID) }));
    return result.rows.map((raw) => {
      const row: Row = {};
      for (const { name, decode } of columns) {
        const value = raw[name];
        row[name] = value === null || value === undefined ? null : decode(value);
      }
      return row;
    });
  }

  private async identityColumns(oid: number, table: string, replident: string): Promise<KeyColumn[]> {
    const { rows } = await this.sql.query<KeyColumn>({
      text: `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, ${COLLATION} AS collation
               FROM (SELECT i.indexrelid, i.indrelid, i.indkey, i.indnkeyatts
                       FROM pg_index i
                      WHERE i.indrelid = $1 AND (i.indisprimary OR i.indisreplident)
                      ORDER BY ($2 = 'i' AND i.indisreplident) DESC, i.indisprimary DESC
                      LIMIT 1) i
               CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               ${COLLATION_JOINS}
              WHERE k.position <= i.indnkeyatts
              ORDER BY k.position`,
      values: [oid, replident],
    });
    if (rows.length === 0) {
      throw new Error(
        `table ${table} has no primary key, so it cannot be read in key order nor its changes matched to rows; ` +
          `add a primary key, or ALTER TABLE … REPLICA IDENTITY USING INDEX a unique index on not-null columns`,
      );
    }
    return rows;
  }

  private async namedColumns(oid: number, table: string, names: readonly string[]): Promise<KeyColumn[]> {
    const { rows } = await this.sql.query<KeyColumn>({
      text: `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, ${COLLATION} AS collation
               FROM unnest($2::text[]) WITH ORDINALITY AS k(name, position)
               JOIN pg_attribute a ON a.attrelid = $1 AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped
               ${COLLATION_JOINS}
              ORDER BY k.position`,
      values: [oid, names],
    });
    const missing = names.filter((name) => !rows.some((r) => r.name === name));
    if (missing.length > 0)
      throw new Error(`table ${table} has no column ${missing.join(', ')} (key columns)`);
    return rows;
  }
}

const RAW_TEXT: CustomTypesConfig = { getTypeParser: () => (text: string) => text };

const COLLATION = `CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                        THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END`;
const COLLATION_JOINS = `JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_collation co ON co.oid = a.attcollation
               LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace`;

/** A key value as a query parameter: json keys go as JSON text, everything else as pg serialises it. */
function keyParameter(key: Row, column: string): unknown {
  const value = key[column];
  if (value === undefined || typeof value === 'symbol') {
    throw new Error(`the last key ${JSON.stringify(key)} has no value for key column ${column}`);
  }
  return value !== null && typeof value === 'object' ? JSON.stringify(value) : value;
}

function readChange(shape: TableShape, row: Row): RowChange {
  return {
    table: shape.table,
    op: 'read',
    row,
    key: Object.fromEntries(shape.keyColumns.map((name) => [name, row[name] ?? null])),
    commitLsn: 0n,
  };
}

function selected(shape: TableShape): string {
  return shape.columns ? shape.columns.map(quoteIdent).join(', ') : '*';
}
