import type pg from 'pg';
import { type Mapping, qualifiedTable } from '../config/schema.js';
import { editDistance, nearest, typoTolerance } from '../config/suggest.js';
import type { ColumnValue, JsonValue, Row } from '../domain.js';
import { errorMessage } from '../errors.js';
import { findTable } from '../source/setup.js';
import { columnReferences, type Mapper, type MappingOutcome } from './mapper.js';

/** Something in a mapping that does not fit the live database, with the closest existing names. */
export interface MappingProblem {
  /** `mappings[0].where.activ` */
  path: string;
  message: string;
  suggestions: string[];
}

export interface RowPreview {
  key: Row;
  outcomes: MappingOutcome[];
}

export interface TablePreview {
  table: string;
  rows: RowPreview[];
  /** Why the table could not be read (it is missing, or permission is denied). */
  error?: string | undefined;
}

export interface Preview {
  tables: TablePreview[];
}

interface Relation {
  schema: string;
  name: string;
  kind: string;
}

/**
 * `verbose-sync validate`: checks each mapping against the live catalog. A missing table lists the closest
 * tables (same schema first, then the same name in other schemas: a Twenty workspace schema left unreplaced);
 * a missing column lists the closest columns of its table.
 */
export async function checkMappings(
  client: pg.Client,
  mapper: Mapper,
  mappings: readonly Mapping[],
): Promise<MappingProblem[]> {
  const { rows: relations } = await client.query<Relation>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`,
  );
  const columnsByTable = new Map<string, TableColumn[]>();
  for (const table of mapper.tables()) {
    const [schema, name] = splitTable(table);
    if (!relations.some((r) => r.schema === schema && r.name === name)) continue;
    columnsByTable.set(table, await columnsOf(client, schema, name));
  }

  const problems: MappingProblem[] = [];
  mappings.forEach((mapping, index) => {
    const table = qualifiedTable(mapping.table);
    const [schema, name] = splitTable(table);
    const relation = relations.find((r) => r.schema === schema && r.name === name);
    if (relation === undefined) {
      const suggestions = nearestTables(schema, name, relations);
      problems.push({
        path: `mappings[${index}].table`,
        message: `table ${table} does not exist${didYouMean(suggestions)}`,
        suggestions,
      });
      return;
    }
    if (relation.kind !== 'r' && relation.kind !== 'p') {
      problems.push({
        path: `mappings[${index}].table`,
        message: `${table} is a ${kindName(relation.kind)}; logical replication publishes only tables, so map the table it reads from`,
        suggestions: [],
      });
    }
    const columns = columnsByTable.get(table) ?? [];
    for (const reference of columnReferences(mapping)) {
      const column = columns.find((c) => c.name === reference.column);
      if (column?.generated) {
        problems.push({
          path: `mappings[${index}].${reference.path}`,
          message:
            `column ${JSON.stringify(reference.column)} of ${table} is a generated column, which logical replication ` +
            'does not send: its value would arrive with a full resync but never with a change. Map the columns ' +
            'it is computed from (a template can join them)',
          suggestions: [],
        });
        continue;
      }
      if (column) continue;
      const suggestions = nearest(
        reference.column,
        columns.map((c) => c.name),
      );
      problems.push({
        path: `mappings[${index}].${reference.path}`,
        message: `column ${JSON.stringify(reference.column)} does not exist in ${table}${didYouMean(suggestions)}`,
        suggestions,
      });
    }
  });
  return problems;
}

/**
 * Reads a few real rows of each mapped table (in key order) and maps them as a full resync would, so the user
 * sees the exact contacts that would be sent, or why a row would be rejected or skipped. Sends nothing.
 */
export async function previewMappings(
  client: pg.Client,
  mapper: Mapper,
  options: { rowsPerTable: number } = { rowsPerTable: 5 },
): Promise<Preview> {
  const tables: TablePreview[] = [];
  for (const table of mapper.tables()) {
    const [schema, name] = splitTable(table);
    try {
      const found = await findTable(client, table);
      if ('problem' in found) throw new Error(found.problem);
      // Ordering by every column would sort the whole table (and fails on json columns): any rows will do.
      const key = found.wholeRowKey ? [] : found.key;
      const from = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
      const order =
        key.length > 0 ? ` ORDER BY ${key.map((c) => client.escapeIdentifier(c)).join(', ')}` : '';
      const { rows } = await client.query<Record<string, unknown>>(
        `SELECT * FROM ${from}${order} LIMIT ${Math.max(0, Math.floor(options.rowsPerTable))}`,
      );
      tables.push({
        table,
        rows: rows.map((raw) => {
          const row = toRow(raw);
          const rowKey: Row = Object.fromEntries(key.map((c): [string, ColumnValue] => [c, row[c] ?? null]));
          return {
            key: rowKey,
            outcomes: mapper.map({ table, op: 'read', row, key: rowKey, commitLsn: 0n }),
          };
        }),
      });
    } catch (error) {
      tables.push({ table, rows: [], error: errorMessage(error) });
    }
  }
  return { tables };
}

/** The preview for people: one line per row and mapping. */
export function formatPreview(preview: Preview): string {
  const lines: string[] = [];
  for (const table of preview.tables) {
    if (table.error !== undefined) {
      lines.push(`${table.table}: cannot read (${table.error})`);
      continue;
    }
    lines.push(`${table.table}: ${table.rows.length} row${table.rows.length === 1 ? '' : 's'} read`);
    if (table.rows.length === 0) lines.push('  (empty table)');
    for (const row of table.rows) {
      for (const outcome of row.outcomes) {
        lines.push(`  ${formatKey(row.key)} mappings[${outcome.mapping}] ${formatOutcome(outcome)}`);
      }
    }
  }
  return lines.join('\n');
}

function formatOutcome(outcome: MappingOutcome): string {
  switch (outcome.kind) {
    case 'contact': {
      const { contact } = outcome;
      const target =
        'list' in contact.target
          ? ` list ${JSON.stringify(contact.target.list)}`
          : 'list_id' in contact.target
            ? ` list_id ${JSON.stringify(contact.target.list_id)}`
            : '';
      const fields = Object.entries(contact.fields).map(
        ([name, value]) => `${name} ${JSON.stringify(value)}`,
      );
      return `→ ${contact.phone}${target}${fields.length > 0 ? `: ${fields.join(', ')}` : ''}`;
    }
    case 'rejected':
      return `rejected: ${outcome.rejection.reason}${outcome.rejection.origin.rawPhone ? ` (phone ${JSON.stringify(outcome.rejection.origin.rawPhone)})` : ''}`;
    case 'skipped':
      return outcome.reason === 'not_matching'
        ? 'skipped: does not match where'
        : `skipped: ${outcome.reason}`;
  }
}

function formatKey(key: Row): string {
  const parts = Object.entries(key).map(
    ([column, value]) => `${column}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
  );
  return parts.length > 0 ? parts.join(' ') : '(no key)';
}

/** Converts a row read with `pg` the way the source stage converts the stream's values. */
function toRow(raw: Record<string, unknown>): Row {
  return Object.fromEntries(Object.entries(raw).map(([column, value]) => [column, toJson(value)]));
}

function toJson(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return String(value);
}

/** `schema.table` as `Mapper.tables()` gives it; a table name may itself contain a dot. */
function splitTable(table: string): [schema: string, name: string] {
  const dot = table.indexOf('.');
  return [table.slice(0, dot), table.slice(dot + 1)];
}

interface TableColumn {
  name: string;
  generated: boolean;
}

async function columnsOf(client: pg.Client, schema: string, table: string): Promise<TableColumn[]> {
  const { rows } = await client.query<TableColumn>(
    `SELECT a.attname AS name, a.attgenerated <> '' AS generated
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [schema, table],
  );
  return rows;
}

function kindName(kind: string): string {
  return kind === 'v'
    ? 'view'
    : kind === 'm'
      ? 'materialized view'
      : kind === 'f'
        ? 'foreign table'
        : 'relation';
}

function didYouMean(suggestions: string[]): string {
  if (suggestions.length === 0) return '';
  return `; did you mean ${suggestions.map((s) => JSON.stringify(s)).join(' or ')}?`;
}

function nearestTables(schema: string, name: string, relations: readonly Relation[]): string[] {
  const sameSchema = relations.filter((r) => r.schema === schema).map((r) => r.name);
  const here = nearest(name, sameSchema).map((n) => `${schema}.${n}`);
  const elsewhere = relations
    .filter((r) => r.schema !== schema)
    .map((r) => ({ table: `${r.schema}.${r.name}`, distance: editDistance(name, r.name) }))
    .filter((c) => c.distance <= typoTolerance(name))
    .sort((a, b) => a.distance - b.distance || a.table.localeCompare(b.table))
    .map((c) => c.table);
  return [...here, ...elsewhere].slice(0, 3);
}
