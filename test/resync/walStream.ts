import type { Lsn, Row, RowChange, RowOp } from '../../src/domain.js';
import { parseLsn } from '../../src/lsn.js';
import type { LogicalMessage } from '../../src/resync/watermark.js';
import type { TestDatabase } from '../harness/database.js';

/** What the daemon gives the backfill: every stream change and every logical message, in stream order. */
export interface StreamConsumer {
  observe(change: RowChange): void;
  onMessage(message: LogicalMessage): RowChange[] | undefined;
}

export type StreamEvent =
  | { kind: 'change'; change: RowChange }
  | { kind: 'message'; message: LogicalMessage; handedOver: RowChange[] | undefined };

/**
 * A stand-in for the replication stream that reads the real WAL through a `test_decoding` slot: changes arrive
 * at their commit, non-transactional messages at their own position, exactly the order pgoutput gives.
 * It is polled by the test, so the test decides when the stream "reaches" a point.
 */
export class WalStream {
  readonly events: StreamEvent[] = [];
  private transaction: RowChange[] = [];

  private constructor(
    private readonly db: TestDatabase,
    private readonly slot: string,
    private readonly keyColumns: Record<string, readonly string[]>,
    /** Replaceable: a restarted daemon's stream replays into the new process. */
    public consumer: StreamConsumer,
  ) {}

  /** Creates the slot now: the stream starts here. */
  static async open(
    db: TestDatabase,
    slot: string,
    keyColumns: Record<string, readonly string[]>,
    consumer: StreamConsumer,
  ): Promise<WalStream> {
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    return new WalStream(db, slot, keyColumns, consumer);
  }

  /** Feeds everything committed so far to the consumer. */
  async poll(): Promise<StreamEvent[]> {
    const { rows } = await this.db.query<{ lsn: string; data: string }>(
      `SELECT lsn::text, data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-xids', '0')`,
      [this.slot],
    );
    const fed: StreamEvent[] = [];
    for (const { lsn, data } of rows) {
      const message = parseMessage(data, parseLsn(lsn));
      if (message) {
        fed.push({ kind: 'message', message, handedOver: this.consumer.onMessage(message) });
      } else if (data.startsWith('BEGIN')) {
        this.transaction = [];
      } else if (data.startsWith('COMMIT')) {
        for (const change of this.transaction) {
          change.commitLsn = parseLsn(lsn);
          this.consumer.observe(change);
          fed.push({ kind: 'change', change });
        }
        this.transaction = [];
      } else {
        const change = this.parseChange(data);
        if (change) this.transaction.push(change);
      }
    }
    this.events.push(...fed);
    return fed;
  }

  /** Polls until `done` holds for the events seen so far. */
  async pollUntil(done: (events: StreamEvent[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.poll();
      if (done(this.events)) return;
      if (Date.now() > deadline) throw new Error('the stream did not reach the expected point');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Polls until everything committed so far has been fed. Decoding stops at the flushed WAL, and the test server
   * commits without flushing, so a flushed marker message is what says "caught up".
   */
  async catchUp(): Promise<void> {
    const { rows } = await this.db.query<{ lsn: string }>(
      `SELECT pg_logical_emit_message(false, 'test_caught_up', '', true)::text AS lsn`,
    );
    const marker = parseLsn(rows[0]!.lsn);
    await this.pollUntil((events) =>
      events.some(
        (e) => e.kind === 'message' && e.message.prefix === 'test_caught_up' && e.message.lsn === marker,
      ),
    );
  }

  /** The chunks handed over so far, with the LSN they were handed over at. */
  handovers(): { lsn: Lsn; rows: RowChange[] }[] {
    return this.events.flatMap((e) =>
      e.kind === 'message' && e.handedOver ? [{ lsn: e.message.lsn, rows: e.handedOver }] : [],
    );
  }

  /** Waits (without consuming) until a watermark matching `pattern` is in the WAL. */
  async waitForWatermark(pattern: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await this.db.query(
        `SELECT 1 FROM pg_logical_slot_peek_changes($1, NULL, NULL) WHERE data LIKE $2`,
        [this.slot, `message:%${pattern}%`],
      );
      if (rows.length > 0) return;
      if (Date.now() > deadline) throw new Error(`no watermark like ${pattern} was written`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private parseChange(data: string): RowChange | undefined {
    const m = /^table (.+?): (INSERT|UPDATE|DELETE|TRUNCATE):\s?(.*)$/s.exec(data);
    if (!m) return undefined;
    const table = unquoteTable(m[1]!);
    const op = m[2]!.toLowerCase() as RowOp;
    const keyColumns = this.keyColumns[table] ?? [];
    const pick = (row: Row): Row => {
      const key: Row = {};
      for (const column of keyColumns) key[column] = row[column] ?? null;
      return key;
    };
    if (op === 'truncate') return { table, op, row: null, key: {}, commitLsn: 0n };
    let body = m[3]!;
    let oldKey: Row | undefined;
    const split = /^old-key: (.*) new-tuple: (.*)$/s.exec(body);
    if (split) {
      oldKey = pick(parseTuple(split[1]!));
      body = split[2]!;
    }
    const row = parseTuple(body);
    return { table, op, row, key: pick(row), oldKey, commitLsn: 0n };
  }
}

function parseMessage(data: string, lsn: Lsn): LogicalMessage | undefined {
  const m = /^message: transactional: (\d) prefix: (.*?), sz: \d+ content:(.*)$/s.exec(data);
  if (!m) return undefined;
  return { prefix: m[2]!, content: m[3]!, lsn, transactional: m[1] === '1' };
}

/** `"Crm"."peopleX"` → `Crm.peopleX`. */
function unquoteTable(text: string): string {
  const parts = text.match(/"(?:[^"]|"")*"|[^."]+/g) ?? [text];
  return parts.map(unquoteIdent).join('.');
}

function unquoteIdent(text: string): string {
  return text.startsWith('"') ? text.slice(1, -1).replace(/""/g, '"') : text;
}

/** `id[integer]:1 name[text]:'it''s'` → { id: '1', name: "it's" }: values stay text, like a decoder's. */
function parseTuple(text: string): Row {
  const row: Row = {};
  const column = /("(?:[^"]|"")*"|[^\s[]+)\[([^\]]+)\]:('(?:[^']|'')*'|\S+)/g;
  for (const m of text.matchAll(column)) {
    const value = m[3]!;
    row[unquoteIdent(m[1]!)] = value.startsWith("'")
      ? value.slice(1, -1).replace(/''/g, "'")
      : value === 'null'
        ? null
        : value;
  }
  return row;
}
