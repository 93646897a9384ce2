import type { Lsn } from '../domain.js';
import { parseLsn } from '../lsn.js';
import type { Sql } from './keysetReader.js';

/** The logical message prefix of resync watermarks; other prefixes (heartbeats…) are not ours. */
export const WATERMARK_PREFIX = 'verbose_sync_resync';

/** Which chunk a watermark brackets. `run` is new in every process, so watermarks left in the WAL by a crashed run never match. */
export interface Watermark {
  resync: string;
  run: string;
  /** Chunk number within this run, unique across tables. */
  chunk: number;
  table: string;
  kind: 'low' | 'high';
}

/** A logical message as the stream hands it over. */
export interface LogicalMessage {
  prefix: string;
  content: string | Uint8Array;
  lsn: Lsn;
  transactional?: boolean;
}

/** Writes watermarks into the WAL as non-transactional logical messages, which the stream sees at their own position. */
export class WatermarkWriter {
  private flushArgument: string | undefined;

  constructor(private readonly sql: Sql) {}

  /** The LSN the message was written at, as the stream will report it. */
  async emit(watermark: Watermark): Promise<Lsn> {
    const flush = await this.flushArg();
    const { rows } = await this.sql.query<{ lsn: string }>({
      text: `SELECT pg_logical_emit_message(false, $1, $2${flush})::text AS lsn`,
      values: [WATERMARK_PREFIX, JSON.stringify(watermark)],
    });
    return parseLsn(rows[0]!.lsn);
  }

  /**
   * PostgreSQL 17+ can flush the message at once. Without that, a non-transactional message stays unflushed,
   * and unseen by the stream, until something else flushes the WAL: on an idle server that is the WAL writer.
   */
  private async flushArg(): Promise<string> {
    if (this.flushArgument === undefined) {
      const { rows } = await this.sql.query<{ version: string }>({
        text: `SELECT current_setting('server_version_num') AS version`,
      });
      this.flushArgument = Number(rows[0]?.version) >= 170_000 ? ', true' : '';
    }
    return this.flushArgument;
  }
}

/** The watermark in a logical message, or undefined when the message is not a resync watermark. */
export function readWatermark(message: LogicalMessage): Watermark | undefined {
  if (message.prefix !== WATERMARK_PREFIX) return undefined;
  const text =
    typeof message.content === 'string' ? message.content : new TextDecoder().decode(message.content);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const w = parsed as Record<string, unknown>;
  if (
    typeof w.resync !== 'string' ||
    typeof w.run !== 'string' ||
    typeof w.chunk !== 'number' ||
    typeof w.table !== 'string' ||
    (w.kind !== 'low' && w.kind !== 'high')
  ) {
    return undefined;
  }
  return { resync: w.resync, run: w.run, chunk: w.chunk, table: w.table, kind: w.kind };
}
