import { type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { type ColumnValue, type Lsn, type Row, type RowChange, UNCHANGED } from '../domain.js';
import { type Decoder, decodeColumn, type TypeDecoders } from './values.js';

const identity = (raw: unknown) => raw;

/**
 * pgoutput with every column left as the server's text. The library parses a Relation message with
 * `pg.types.getTypeParser(oid)` for each column and applies it to every later tuple of that relation; we swap
 * in the identity right after the Relation message is parsed — synchronously, before the next message on the
 * wire is parsed (the library parses at receipt, even while earlier messages wait in its flow-control queue) —
 * so `values.ts` decodes the text without loss.
 *
 * In the parsed tuples a column is then a string, null (SQL NULL) or undefined (an unchanged TOASTed value:
 * the library puts `undefined` there unless the old row was sent, under REPLICA IDENTITY FULL, in which case
 * it copies the old value, which is the same).
 */
export class TextPgoutputPlugin extends PgoutputPlugin {
  /** Messages parsed off the wire by this plugin (the library parses at receipt, before its queue). */
  received = 0;

  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer);
    this.received++;
    if (message.tag === 'relation') for (const column of message.columns) column.parser = identity;
    return message;
  }
}

interface RelationCodec {
  table: string;
  columns: { name: string; decoder: Decoder }[];
  key: readonly string[];
  /** The key's columns with their decoders, in key order. */
  keyColumns: { name: string; decoder: Decoder | undefined }[];
}

type RowMessage =
  | Pgoutput.MessageInsert
  | Pgoutput.MessageUpdate
  | Pgoutput.MessageDelete
  | Pgoutput.MessageTruncate;

/** Turns pgoutput row messages into `RowChange`s. */
export class ChangeDecoder {
  // Keyed by the Relation message object: a new one arrives after DDL, so the codec follows the new columns.
  private readonly codecs = new WeakMap<Pgoutput.MessageRelation, RelationCodec>();

  /**
   * @param keyColumns per `schema.table`, the key to report (from `prepareSource`); otherwise the columns the
   *   server flags as replica identity (every column under REPLICA IDENTITY FULL).
   */
  constructor(
    private readonly types: TypeDecoders,
    private readonly keyColumns?: ReadonlyMap<string, readonly string[]>,
  ) {}

  /** The column type OIDs of a relation, for `TypeDecoders.resolve`. */
  static typeOids(relation: Pgoutput.MessageRelation): number[] {
    return relation.columns.map((c) => c.typeOid);
  }

  changes(message: RowMessage, commitLsn: Lsn): RowChange[] {
    switch (message.tag) {
      case 'insert': {
        const codec = this.codec(message.relation);
        const row = decodeTuple(message.new, codec);
        return [{ table: codec.table, op: 'insert', row, key: pick(row, codec.key), commitLsn }];
      }
      case 'update': {
        const codec = this.codec(message.relation);
        const row = decodeTuple(message.new, codec);
        const key = pick(row, codec.key);
        const oldTuple = message.key ?? message.old;
        let oldKey: Row | undefined;
        if (oldTuple) {
          // Only the key is kept of the old row: under REPLICA IDENTITY FULL it is the whole row.
          const old = decodeKey(oldTuple, codec);
          // A key column that is TOASTed and unchanged is not in the new tuple but is in the old key.
          for (const column of codec.key) {
            if (key[column] === UNCHANGED && old[column] !== undefined) key[column] = old[column]!;
          }
          if (!sameRow(old, key)) oldKey = old;
        }
        const change: RowChange = { table: codec.table, op: 'update', row, key, commitLsn };
        if (oldKey) change.oldKey = oldKey;
        return [change];
      }
      case 'delete': {
        const codec = this.codec(message.relation);
        // K (the replica identity columns) under DEFAULT/INDEX, O (the whole old row) under FULL.
        const row = decodeTuple(message.old ?? message.key ?? {}, codec);
        return [{ table: codec.table, op: 'delete', row, key: pick(row, codec.key), commitLsn }];
      }
      case 'truncate':
        return message.relations.map((relation) => ({
          table: tableName(relation),
          op: 'truncate' as const,
          row: null,
          key: {},
          commitLsn,
        }));
    }
  }

  private codec(relation: Pgoutput.MessageRelation): RelationCodec {
    let codec = this.codecs.get(relation);
    if (!codec) {
      const table = tableName(relation);
      const names = new Set(relation.columns.map((c) => c.name));
      const configured = this.keyColumns?.get(table);
      const columns = relation.columns.map((c) => ({ name: c.name, decoder: this.types.get(c.typeOid) }));
      const key = configured?.every((c) => names.has(c)) ? configured : relation.keyColumns;
      codec = {
        table,
        columns,
        key,
        keyColumns: key.map((name) => ({ name, decoder: columns.find((c) => c.name === name)?.decoder })),
      };
      this.codecs.set(relation, codec);
    }
    return codec;
  }
}

function tableName(relation: Pgoutput.MessageRelation): string {
  return `${relation.schema}.${relation.name}`;
}

function decodeTuple(tuple: Record<string, unknown>, codec: RelationCodec): Row {
  const row: Row = {};
  for (const { name, decoder } of codec.columns) {
    // Key-only tuples (a delete's K) carry only the key columns.
    if (name in tuple) row[name] = decodeColumn(tuple[name], decoder);
  }
  return row;
}

/** `pick(decodeTuple(tuple, codec), codec.key)`, decoding the key's columns only. */
function decodeKey(tuple: Record<string, unknown>, codec: RelationCodec): Row {
  const key: Row = {};
  for (const { name, decoder } of codec.keyColumns) {
    key[name] = name in tuple && decoder ? decodeColumn(tuple[name], decoder) : null;
  }
  return key;
}

function pick(row: Row, columns: readonly string[]): Row {
  const key: Row = {};
  for (const column of columns) key[column] = row[column] ?? null;
  return key;
}

function sameRow(a: Row, b: Row): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => sameValue(a[k], b[k]));
}

function sameValue(a: ColumnValue | undefined, b: ColumnValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
