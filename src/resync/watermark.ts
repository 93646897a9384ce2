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

/**
 * Writes watermarks into the WAL as logical messages. A high watermark is non-transactional: the stream sees it
 * at its own position. A low watermark is a transaction of its own, committed like the CRM's commits are.
 *
 * Why the low one commits: PostgreSQL writes a transaction's commit record before the transaction becomes
 * visible to other sessions; in between it flushes the record and, with synchronous replication, waits for the
 * standby. A commit in that gap whose record precedes the low watermark reaches the stream before the window
 * opens, yet a chunk read at that moment does not see it: the chunk's older row would enter the pipeline after
 * the newer change and overwrite it in Verbose. Committing the low watermark with `synchronous_commit =
 * remote_apply` returns only once the WAL is flushed through it and every standby wait for an earlier position
 * is over (standbys confirm positions in order), so such a commit has left its waits and becomes visible within
 * microseconds. Without synchronous standbys this costs one WAL flush per chunk; with one that is down, the resync
 * waits at its next low watermark as every CRM commit does.
 */
export class WatermarkWriter {
  private flushArgument: string | undefined;

  constructor(private readonly sql: Sql) {}

  /** The LSN the message was written at, as the stream will report it. */
  async emit(watermark: Watermark): Promise<Lsn> {
    const values = [WATERMARK_PREFIX, JSON.stringify(watermark)];
    if (watermark.kind === 'low') {
      // The setting is local to this statement's transaction; it applies at its commit.
      const { rows } = await this.sql.query<{ lsn: string }>({
        text: `SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn,
                      set_config('synchronous_commit', 'remote_apply', true) AS waits_for`,
        values,
      });
      return parseLsn(rows[0]!.lsn);
    }
    const flush = await this.flushArg();
    const { rows } = await this.sql.query<{ lsn: string }>({
      text: `SELECT pg_logical_emit_message(false, $1, $2${flush})::text AS lsn`,
      values,
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
