import { randomUUID } from 'node:crypto';
import { Wakeup } from '../delivery/wakeup.js';
import type { Lsn, Row, RowChange } from '../domain.js';
import { asError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../ops/metrics.js';
import { keyString } from './keyString.js';
import { type ChunkReader, KeysetReader, type Sql, type TableShape } from './keysetReader.js';
import { ResyncProgressReport, type TextSink } from './progressReport.js';
import type { ProgressStore, ResyncProgress, ResyncReason, TableProgress } from './progressStore.js';
import { type LogicalMessage, readWatermark, type Watermark, WatermarkWriter } from './watermark.js';

/** A mapped table to load; key columns are found from the replica identity index or primary key when not given. */
export interface ResyncTable {
  table: string;
  keyColumns?: readonly string[] | undefined;
  /** The columns the mappings use; the rest of a row is not read. All columns when unset. */
  columns?: readonly string[] | undefined;
}

export interface BackfillOptions {
  /** Reads and watermark emits; a `pg.Pool` on the source database. */
  sql: Sql;
  tables: readonly ResyncTable[];
  /** Rows per chunk (`resync.chunk_size`). */
  chunkSize: number;
  progress: ProgressStore;
  log: Logger;
  metrics: Metrics;
  now?: (() => number) | undefined;
  /** Defaults to a `KeysetReader` on `sql`. */
  reader?: ChunkReader | undefined;
  /** Defaults to a `WatermarkWriter` on `sql`. */
  watermarks?: { emit(watermark: Watermark): Promise<Lsn> } | undefined;
  /**
   * Chunks handed over but not yet delivered before the next chunk waits. Their rows are kept (a stream that
   * replays after a reconnect gets them again), so this bounds the backfill's memory to this many chunks.
   */
  maxUndeliveredChunks?: number | undefined;
  /** Where to draw a progress bar instead of logging progress lines: process.stderr when stdout is a terminal. */
  progressBar?: TextSink | undefined;
  progressIntervalMs?: number | undefined;
  /** Warn when the stream has not reached a chunk's high watermark after this long (is it running?). */
  slowStreamWarningMs?: number | undefined;
  /** Called once when the resync fails (a query or a progress write failed); `finished()` rejects with it too. */
  onError?: ((error: Error) => void) | undefined;
  /**
   * `--dry-run`: nothing is acknowledged, so a chunk counts as delivered once its rows are handed over, and no
   * progress is written (the state directory is left as it was).
   */
  dryRun?: boolean | undefined;
}

/** One chunk between its low watermark and its delivery. */
interface Chunk {
  seq: number;
  shape: TableShape;
  /** Set once read, before the high watermark is written. */
  rows: RowChange[] | undefined;
  lastKey: Row | null;
  /** The table's last chunk: the table is done once this one is delivered. */
  final: boolean;
  windowOpen: boolean;
  /** Keys of the table changed by the stream since the low watermark. */
  changed: Set<string>;
  truncated: boolean;
  /** The high watermark's LSN, once the stream reached it and the rows were handed over. */
  highLsn: Lsn | undefined;
}

interface Run {
  progress: ResyncProgress;
  /** New in every process: watermarks of a crashed run, replayed from the WAL, never match this run's chunks. */
  runId: string;
  shapes: TableShape[];
  /** From the low watermark until delivered, by sequence number. */
  chunks: Map<number, Chunk>;
  /** Handed over and not yet delivered, in stream order. */
  undelivered: Chunk[];
  /** Rows read per table (delivered in earlier runs + handed over in this one), for people. */
  rowsRead: Map<string, number>;
  nextSeq: number;
  failure: Error | undefined;
  report: ResyncProgressReport;
}

/**
 * Full resync by the watermark method (Netflix DBLog, Debezium incremental snapshots): each chunk is read
 * between a low and a high watermark written into the WAL while the stream keeps running. Rows the stream
 * changed between the two watermarks are dropped from the chunk, because the stream's version is at least as
 * new; the rest enter the pipeline at the high watermark's position in the stream, so anything the stream
 * delivers later overwrites them. Progress is persisted only once a chunk is delivered, so a crash re-reads at
 * most the chunks that were not (upserts are idempotent).
 *
 * The daemon wires it to the stream: `observe` every change, `onMessage` every logical message (a high
 * watermark returns the chunk's rows), `delivered` every checkpoint advance.
 */
export class Backfill {
  private readonly reader: ChunkReader;
  private readonly watermarks: { emit(watermark: Watermark): Promise<Lsn> };
  private readonly now: () => number;
  private readonly maxUndelivered: number;
  private run: Run | undefined;
  private loop: Promise<void> | undefined;
  private writes: Promise<void> = Promise.resolve();
  private readonly signal = new Wakeup();
  private stopRequested = false;
  private beginning = false;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: BackfillOptions) {
    if (!Number.isInteger(options.chunkSize) || options.chunkSize < 1) {
      throw new Error(`resync chunk size must be a positive integer, got ${options.chunkSize}`);
    }
    this.reader = options.reader ?? new KeysetReader(options.sql);
    this.watermarks = options.watermarks ?? new WatermarkWriter(options.sql);
    this.now = options.now ?? Date.now;
    this.maxUndelivered = Math.max(1, options.maxUndeliveredChunks ?? 4);
  }

  /** A full resync is being read or delivered in this process. */
  get running(): boolean {
    return this.beginning || this.loop !== undefined;
  }

  /**
   * Begins a new full resync of every table (replacing an unfinished one) and returns once its progress file
   * is written; the reading goes on in the background until `finished()`.
   */
  start(reason: ResyncReason): Promise<void> {
    return this.begin(() => this.startNew(reason));
  }

  /** Continues the resync recorded in the state directory, if there is one (false when there is none). */
  resume(): Promise<boolean> {
    return this.begin(() => this.resumeRecorded());
  }

  /**
   * Resolves when the running resync has finished or stopped (at once when none runs); rejects with its error
   * when it failed.
   */
  async finished(): Promise<void> {
    const run = this.run;
    await this.loop;
    if (run?.failure) throw run.failure;
  }

  /** Every change the stream delivers, before it is mapped: records the keys changed in open windows. */
  observe(change: RowChange): void {
    if (change.op === 'read' || !this.run) return;
    for (const chunk of this.run.chunks.values()) {
      if (!chunk.windowOpen || chunk.shape.table !== change.table) continue;
      if (change.op === 'truncate') {
        chunk.truncated = true;
        continue;
      }
      chunk.changed.add(keyString(change.key, chunk.shape.keyColumns));
      if (change.oldKey) chunk.changed.add(keyString(change.oldKey, chunk.shape.keyColumns));
    }
  }

  /**
   * Every logical message the stream delivers. For this run's high watermark: the chunk's rows, minus those the
   * stream changed since the low watermark, with `commitLsn` = the message's LSN. The daemon maps them, adds
   * them to the coalescer, then calls `checkpoint.committed(message.lsn)`. Undefined for anything else.
   */
  onMessage(message: LogicalMessage): RowChange[] | undefined {
    const watermark = readWatermark(message);
    const run = this.run;
    if (!watermark || !run || watermark.resync !== run.progress.id || watermark.run !== run.runId) {
      return undefined;
    }
    const chunk = run.chunks.get(watermark.chunk);
    if (!chunk) return undefined;
    if (watermark.kind === 'low') {
      // A replay after a reconnect opens the window again; keys recorded before stay (dropping more is safe).
      chunk.windowOpen = true;
      return undefined;
    }
    if (!chunk.rows) return undefined;
    chunk.windowOpen = false;
    const rows = chunk.truncated
      ? []
      : chunk.rows
          // The rows changed while the chunk was read are newer in the stream than in the chunk.
          .filter(
            (row) =>
              chunk.changed.size === 0 || !chunk.changed.has(keyString(row.key, chunk.shape.keyColumns)),
          )
          .map((row) => ({ ...row, commitLsn: message.lsn }));
    if (chunk.highLsn === undefined) {
      chunk.highLsn = message.lsn;
      run.undelivered.push(chunk);
      const table = chunk.shape.table;
      const read = (run.rowsRead.get(table) ?? 0) + chunk.rows.length;
      run.rowsRead.set(table, read);
      run.report.update(table, read);
      this.signal.notify();
      if (this.options.dryRun) this.markDelivered(run, message.lsn);
    }
    return rows;
  }

  /**
   * The checkpoint moved to `ackLsn`: chunks whose high watermark is at or before it are delivered, and their
   * progress is persisted. Resolves once written; never rejects (a failed write fails the resync instead).
   */
  delivered(ackLsn: Lsn): Promise<void> {
    const run = this.run;
    if (!run || !this.markDelivered(run, ackLsn)) return this.writes;
    return this.persist(run);
  }

  /** Records the chunks handed over at or before `ackLsn` as delivered; false when there was none. */
  private markDelivered(run: Run, ackLsn: Lsn): boolean {
    let advanced = false;
    while (run.undelivered.length > 0 && run.undelivered[0]!.highLsn! <= ackLsn) {
      const chunk = run.undelivered.shift()!;
      run.chunks.delete(chunk.seq);
      const table = run.progress.tables[chunk.shape.table]!;
      table.lastKey = chunk.lastKey;
      table.rowsDone += chunk.rows!.length;
      if (chunk.final) {
        table.done = true;
        this.options.log.info(
          { table: chunk.shape.table, rows: table.rowsDone },
          'full resync: table finished',
        );
      }
      advanced = true;
    }
    if (advanced) this.signal.notify();
    return advanced;
  }

  /** No further chunk is started; resolves once the current step and the pending progress writes are done. */
  stop(): Promise<void> {
    this.stopRequested = true;
    this.signal.notify();
    this.stopping ??= (async () => {
      await this.loop;
      await this.writes;
    })();
    return this.stopping;
  }

  private async startNew(reason: ResyncReason): Promise<void> {
    const shapes = await this.describeTables();
    const previous = await this.options.progress.load().catch((error: unknown) => {
      this.options.log.warn(
        { err: error },
        'a damaged full resync progress file is replaced by a new resync',
      );
      return undefined;
    });
    if (previous) {
      this.options.log.warn(
        { resync: previous.id, startedAt: previous.startedAt },
        'an unfinished full resync is replaced by a new one',
      );
    }
    const tables: Record<string, TableProgress> = {};
    for (const shape of shapes) {
      tables[shape.table] = {
        lastKey: null,
        done: false,
        rowsDone: 0,
        estimatedRows: await this.reader.estimateRows(shape),
      };
    }
    const progress: ResyncProgress = {
      version: 1,
      id: randomUUID(),
      startedAt: new Date(this.now()).toISOString(),
      reason,
      tables,
    };
    if (!this.options.dryRun) await this.options.progress.save(progress);
    this.launch(progress, shapes);
  }

  private async resumeRecorded(): Promise<boolean> {
    const progress = await this.options.progress.load();
    if (!progress) return false;
    const shapes = await this.describeTables();
    let changed = false;
    for (const shape of shapes) {
      if (progress.tables[shape.table]) continue;
      this.options.log.info(
        { table: shape.table },
        'full resync: a table mapped since the resync began is added',
      );
      progress.tables[shape.table] = {
        lastKey: null,
        done: false,
        rowsDone: 0,
        estimatedRows: await this.reader.estimateRows(shape),
      };
      changed = true;
    }
    for (const table of Object.keys(progress.tables)) {
      if (shapes.some((s) => s.table === table)) continue;
      this.options.log.info({ table }, 'full resync: a table no longer mapped is left out');
      delete progress.tables[table];
      changed = true;
    }
    if (changed && !this.options.dryRun) await this.options.progress.save(progress);
    this.launch(progress, shapes);
    return true;
  }

  /** One start or resume at a time, never while a resync runs or after `stop()`. */
  private async begin<T>(steps: () => Promise<T>): Promise<T> {
    if (this.stopRequested) throw new Error('the full resync was stopped; it cannot start again');
    if (this.running) throw new Error('a full resync is already running');
    this.beginning = true;
    try {
      return await steps();
    } finally {
      this.beginning = false;
    }
  }

  private async describeTables(): Promise<TableShape[]> {
    const shapes: TableShape[] = [];
    for (const { table, keyColumns, columns } of this.options.tables) {
      // A table can feed several mappings; it is read once and each mapping sees its rows.
      if (shapes.some((shape) => shape.table === table)) continue;
      shapes.push(await this.reader.describe(table, keyColumns, columns));
    }
    return shapes;
  }

  private launch(progress: ResyncProgress, shapes: TableShape[]): void {
    const report = new ResyncProgressReport({
      log: this.options.log,
      metrics: this.options.metrics,
      now: this.now,
      bar: this.options.progressBar,
      intervalMs: this.options.progressIntervalMs,
    });
    const run: Run = {
      progress,
      runId: randomUUID(),
      shapes,
      chunks: new Map(),
      undelivered: [],
      rowsRead: new Map(Object.entries(progress.tables).map(([table, t]) => [table, t.rowsDone])),
      nextSeq: 1,
      failure: undefined,
      report,
    };
    this.run = run;
    report.begin(progress.tables);
    this.options.log.info(
      { resync: progress.id, reason: progress.reason, tables: Object.keys(progress.tables) },
      'full resync running',
    );
    this.loop = this.read(run)
      .catch((error: unknown) => this.fail(run, error))
      .finally(() => {
        report.end();
        this.loop = undefined;
      });
  }

  /** The chunk loop: one chunk in flight between its low watermark and its hand-over, a few awaiting delivery. */
  private async read(run: Run): Promise<void> {
    const { chunkSize, log } = this.options;
    for (const shape of run.shapes) {
      const table = run.progress.tables[shape.table]!;
      if (table.done) continue;
      log.info(
        { table: shape.table, rowsDone: table.rowsDone, estimatedRows: table.estimatedRows },
        'full resync: reading table',
      );
      // Rows inserted after this point reach the pipeline through the stream; reading up to the greatest key of
      // now, not of each chunk's time, is what makes the resync end on a table that keeps growing.
      const until = await this.reader.lastKey(shape);
      let after = table.lastKey;
      while (until !== null) {
        await this.until(run, () => run.undelivered.length < this.maxUndelivered);
        if (this.halted(run)) return;
        const chunk = this.openChunk(run, shape);
        // Which key range each chunk reads: the evidence that a resumed resync skips delivered chunks.
        log.debug({ table: shape.table, chunk: chunk.seq, after }, 'full resync: reading chunk');
        await this.watermarks.emit(this.watermark(run, chunk, 'low'));
        const rows = await this.reader.readChunk(shape, { after, until }, chunkSize);
        if (rows.length === 0) {
          run.chunks.delete(chunk.seq);
          break;
        }
        chunk.rows = rows;
        chunk.lastKey = rows[rows.length - 1]!.key;
        chunk.final =
          rows.length < chunkSize ||
          keyString(chunk.lastKey, shape.keyColumns) === keyString(until, shape.keyColumns);
        await this.watermarks.emit(this.watermark(run, chunk, 'high'));
        await this.handedOver(run, chunk);
        if (chunk.highLsn === undefined) return; // stopped while waiting
        after = chunk.lastKey;
        if (chunk.final) break;
      }
      if (!table.done && !run.undelivered.some((c) => c.shape.table === shape.table && c.final)) {
        await this.tableRead(run, shape);
      }
    }
    await this.until(run, () => run.undelivered.length === 0);
    await this.writes;
    if (this.halted(run)) return;
    if (!this.options.dryRun) await this.options.progress.clear();
    const rows = [...run.rowsRead.values()].reduce((a, b) => a + b, 0);
    log.info({ resync: run.progress.id, rows }, 'full resync finished');
  }

  private openChunk(run: Run, shape: TableShape): Chunk {
    // Registered before the low watermark is written: the stream may reach it before the emit returns.
    const chunk: Chunk = {
      seq: run.nextSeq++,
      shape,
      rows: undefined,
      lastKey: null,
      final: false,
      windowOpen: false,
      changed: new Set(),
      truncated: false,
      highLsn: undefined,
    };
    run.chunks.set(chunk.seq, chunk);
    return chunk;
  }

  private watermark(run: Run, chunk: Chunk, kind: Watermark['kind']): Watermark {
    return { resync: run.progress.id, run: run.runId, chunk: chunk.seq, table: chunk.shape.table, kind };
  }

  /** Every row of the table was read: it is done when its last chunk is delivered (at once if none is pending). */
  private async tableRead(run: Run, shape: TableShape): Promise<void> {
    const last = run.undelivered.findLast((c) => c.shape.table === shape.table);
    if (last) {
      last.final = true;
      return;
    }
    const table = run.progress.tables[shape.table]!;
    table.done = true;
    this.options.log.info({ table: shape.table, rows: table.rowsDone }, 'full resync: table finished');
    await this.persist(run);
  }

  private async handedOver(run: Run, chunk: Chunk): Promise<void> {
    const warnAfter = this.options.slowStreamWarningMs ?? 60_000;
    const warning = setTimeout(() => {
      this.options.log.warn(
        { table: chunk.shape.table, chunk: chunk.seq, waitedMs: warnAfter },
        'full resync: the replication stream has not reached the chunk’s high watermark yet; is it running and caught up?',
      );
    }, warnAfter);
    warning.unref();
    try {
      await this.until(run, () => chunk.highLsn !== undefined);
    } finally {
      clearTimeout(warning);
    }
  }

  private persist(run: Run): Promise<void> {
    if (this.options.dryRun) return this.writes;
    const snapshot = structuredClone(run.progress);
    this.writes = this.writes
      .then(() => this.options.progress.save(snapshot))
      .catch((error: unknown) => this.fail(run, error));
    return this.writes;
  }

  private fail(run: Run, error: unknown): void {
    if (run.failure) return;
    run.failure = asError(error);
    this.options.log.error({ err: run.failure, resync: run.progress.id }, 'full resync failed');
    this.signal.notify();
    this.options.onError?.(run.failure);
  }

  private halted(run: Run): boolean {
    return this.stopRequested || run.failure !== undefined;
  }

  private async until(run: Run, condition: () => boolean): Promise<void> {
    while (!condition() && !this.halted(run)) await this.signal.next();
  }
}
