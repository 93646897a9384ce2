import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lsn, Row, RowChange } from '../../src/domain.js';
import { createLogger, type Logger } from '../../src/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { Backfill, type ResyncTable } from '../../src/resync/backfill.js';
import { type ChunkReader, KeysetReader, type TableShape } from '../../src/resync/keysetReader.js';
import { ProgressStore } from '../../src/resync/progressStore.js';
import { WATERMARK_PREFIX, type Watermark, WatermarkWriter } from '../../src/resync/watermark.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { REPLICATION_SESSION } from './session.js';
import { WalStream } from './walStream.js';

let db: TestDatabase;
let pool: pg.Pool;
let stateRoot: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase('backfill');
  pool = new pg.Pool({ connectionString: db.url, max: 3, options: REPLICATION_SESSION });
  stateRoot = await mkdtemp(join(tmpdir(), 'backfill-state-'));
  await db.query(`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await pool.end();
  await db.drop();
  await rm(stateRoot, { recursive: true, force: true });
});

interface Read {
  table: string;
  afterKey: Row | null;
  rows: number;
}

/** Hooks run around a read, on the test's own connection: writes that commit inside a chunk's window. */
interface ReadHooks {
  before?: (shape: TableShape, afterKey: Row | null) => Promise<unknown> | undefined;
  after?: (shape: TableShape, afterKey: Row | null) => Promise<unknown> | undefined;
}

interface Harness {
  backfill: Backfill;
  reads: Read[];
  emitted: { watermark: Watermark; lsn: Lsn }[];
  progress: ProgressStore;
  metrics: Metrics;
  logLines: Record<string, unknown>[];
  errors: Error[];
}

let stateDirs = 0;

function harness(
  tables: ResyncTable[],
  options: {
    chunkSize: number;
    stateDir?: string;
    hooks?: ReadHooks;
    maxUndeliveredChunks?: number;
    slowStreamWarningMs?: number;
  },
): Harness {
  const reads: Read[] = [];
  const emitted: Harness['emitted'] = [];
  const real = new KeysetReader(pool);
  const reader: ChunkReader = {
    describe: (table, keyColumns) => real.describe(table, keyColumns),
    estimateRows: (shape) => real.estimateRows(shape),
    lastKey: (shape) => real.lastKey(shape),
    async readChunk(shape, range, limit) {
      await options.hooks?.before?.(shape, range.after);
      const rows = await real.readChunk(shape, range, limit);
      reads.push({ table: shape.table, afterKey: range.after, rows: rows.length });
      await options.hooks?.after?.(shape, range.after);
      return rows;
    },
  };
  const writer = new WatermarkWriter(pool);
  const logLines: Record<string, unknown>[] = [];
  const log: Logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => logLines.push(JSON.parse(line)) },
  });
  const progress = new ProgressStore(options.stateDir ?? join(stateRoot, `state${++stateDirs}`));
  const metrics = new Metrics({ defaults: false });
  const errors: Error[] = [];
  const backfill = new Backfill({
    sql: pool,
    tables,
    chunkSize: options.chunkSize,
    progress,
    log,
    metrics,
    reader,
    watermarks: {
      async emit(watermark) {
        const lsn = await writer.emit(watermark);
        emitted.push({ watermark, lsn });
        return lsn;
      },
    },
    maxUndeliveredChunks: options.maxUndeliveredChunks,
    slowStreamWarningMs: options.slowStreamWarningMs,
    onError: (error) => errors.push(error),
  });
  cleanups.push(() => backfill.stop());
  return { backfill, reads, emitted, progress, metrics, logLines, errors };
}

let slots = 0;
async function openStream(
  backfill: Backfill,
  keyColumns: Record<string, readonly string[]>,
): Promise<WalStream> {
  return WalStream.open(db, `backfill_${++slots}`, keyColumns, backfill);
}

/** Plays the daemon: polls the stream and reports each handed-over chunk delivered at once, until the resync ends. */
async function deliverToEnd(stream: WalStream, backfill: Backfill): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (backfill.running) {
    for (const event of await stream.poll()) {
      if (event.kind === 'message' && event.handedOver) await backfill.delivered(event.message.lsn);
    }
    if (Date.now() > deadline) throw new Error('the resync did not finish');
    await sleep(10);
  }
  await backfill.finished();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const ids = (rows: RowChange[]) => rows.map((r) => r.key.id);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Backfill', () => {
  it('loads every row in key order, chunk by chunk, each entering the stream at its high watermark', async () => {
    await db.query(`CREATE TABLE t_load (id int PRIMARY KEY, name text);
                    INSERT INTO t_load SELECT g, 'n' || g FROM generate_series(1, 25) g`);
    const h = harness([{ table: 'public.t_load' }], { chunkSize: 10 });
    const stream = await openStream(h.backfill, { 'public.t_load': ['id'] });
    await h.backfill.start('requested');
    expect(h.backfill.running).toBe(true);
    await expect(h.backfill.start('requested')).rejects.toThrow(/already running/);
    await expect(h.backfill.resume()).rejects.toThrow(/already running/);
    expect((await h.progress.load())?.reason).toBe('requested');
    await deliverToEnd(stream, h.backfill);

    const handovers = stream.handovers();
    expect(handovers.map((c) => ids(c.rows))).toEqual([range(1, 10), range(11, 20), range(21, 25)]);
    const highs = h.emitted.filter((e) => e.watermark.kind === 'high').map((e) => e.lsn);
    // The LSN pg_logical_emit_message returns is where the stream reports the message.
    expect(handovers.map((c) => c.lsn)).toEqual(highs);
    for (const chunk of handovers) {
      for (const row of chunk.rows) expect(row).toMatchObject({ op: 'read', commitLsn: chunk.lsn });
    }
    expect(handovers[0]!.rows[0]).toEqual({
      table: 'public.t_load',
      op: 'read',
      row: { id: 1, name: 'n1' },
      key: { id: 1 },
      commitLsn: handovers[0]!.lsn,
    });
    expect(h.reads.map((r) => r.afterKey)).toEqual([null, { id: 10 }, { id: 20 }]);
    expect(await h.progress.load()).toBeUndefined();
    expect((await h.metrics.resyncRunning.get()).values[0]?.value).toBe(0);
    expect((await h.metrics.resyncRowsDone.get()).values).toEqual([
      { value: 25, labels: { table: 'public.t_load' } },
    ]);
    expect((await h.metrics.resyncRowsTotal.get()).values[0]?.value).toBe(25);
    expect(h.logLines.some((l) => l.msg === 'full resync finished')).toBe(true);
  });

  it('drops rows the stream changed between the watermarks, but not rows changed after the high one', async () => {
    await db.query(`CREATE TABLE t_window (id int PRIMARY KEY, name text);
                    INSERT INTO t_window SELECT g, 'v0' FROM generate_series(1, 6) g`);
    const h = harness([{ table: 'public.t_window' }], {
      chunkSize: 100,
      hooks: {
        // Committed after the low watermark, before the read: the chunk sees the new version, the stream has it too.
        before: () =>
          db.query(`UPDATE t_window SET name = 'before read' WHERE id = 1;
                    DELETE FROM t_window WHERE id = 2;
                    UPDATE t_window SET id = 60 WHERE id = 3`),
        // Committed after the read, before the high watermark: the chunk's version is older than the stream's.
        // The same, for a key change: the chunk holds the old key, which the stream names as the old key.
        after: () =>
          db.query(`UPDATE t_window SET name = 'after read' WHERE id = 4;
                    UPDATE t_window SET id = 70 WHERE id = 6`),
      },
    });
    const stream = await openStream(h.backfill, { 'public.t_window': ['id'] });
    await h.backfill.start('requested');
    await stream.waitForWatermark('"kind":"high"');
    // Committed after the high watermark: the stream delivers it after the chunk, so the chunk keeps the row.
    await db.query(`UPDATE t_window SET name = 'after high' WHERE id = 5`);
    await stream.pollUntil((events) =>
      events.some((e) => e.kind === 'change' && e.change.row?.name === 'after high'),
    );

    const [chunk] = stream.handovers();
    expect(chunk!.rows.map((r) => r.row)).toEqual([{ id: 5, name: 'v0' }]);
    const order = stream.events.map((e) =>
      e.kind === 'message' ? (e.handedOver ? 'chunk' : 'low') : `${e.change.op} ${String(e.change.key.id)}`,
    );
    expect(order).toEqual([
      'low',
      'update 1',
      'delete 2',
      'update 60',
      'update 4',
      'update 70',
      'chunk',
      'update 5',
    ]);
    await h.backfill.delivered(chunk!.lsn);
    await h.backfill.finished();
    expect(await h.progress.load()).toBeUndefined();
  });

  it('drops the whole chunk when the table is truncated inside its window', async () => {
    await db.query(`CREATE TABLE t_truncate (id int PRIMARY KEY);
                    INSERT INTO t_truncate SELECT generate_series(1, 5)`);
    let first = true;
    const h = harness([{ table: 'public.t_truncate' }], {
      chunkSize: 3,
      hooks: {
        after: () => {
          if (!first) return undefined;
          first = false;
          return db.query(`TRUNCATE t_truncate; INSERT INTO t_truncate VALUES (100)`);
        },
      },
    });
    const stream = await openStream(h.backfill, { 'public.t_truncate': ['id'] });
    await h.backfill.start('requested');
    await deliverToEnd(stream, h.backfill);

    const handovers = stream.handovers();
    // Row 100, inserted after the truncate, comes through the stream (and is past the greatest key read up to).
    expect(handovers.map((c) => ids(c.rows))).toEqual([[]]);
    const changes = stream.events.flatMap((e) => (e.kind === 'change' ? [e.change.op] : []));
    expect(changes).toEqual(['truncate', 'insert']);
    expect(h.reads.map((r) => r.rows)).toEqual([3, 0]);
  });

  it('persists a chunk’s progress only once the checkpoint has passed its high watermark', async () => {
    await db.query(`CREATE TABLE t_progress (id int PRIMARY KEY);
                    INSERT INTO t_progress SELECT generate_series(1, 25)`);
    const h = harness([{ table: 'public.t_progress' }], { chunkSize: 10 });
    const stream = await openStream(h.backfill, { 'public.t_progress': ['id'] });
    await h.backfill.start('requested');
    await stream.pollUntil(() => stream.handovers().length >= 1);
    const high1 = stream.handovers()[0]!.lsn;
    const table = async () => (await h.progress.load())?.tables['public.t_progress'];

    expect(await table()).toEqual({ lastKey: null, done: false, rowsDone: 0, estimatedRows: 25 });
    await h.backfill.delivered(high1 - 1n);
    expect(await table()).toMatchObject({ lastKey: null, rowsDone: 0 });
    await h.backfill.delivered(high1);
    expect(await table()).toEqual({ lastKey: { id: 10 }, done: false, rowsDone: 10, estimatedRows: 25 });

    await stream.pollUntil(() => stream.handovers().length === 3);
    const [, high2, high3] = stream.handovers().map((c) => c.lsn);
    await h.backfill.delivered(high2!);
    expect(await table()).toMatchObject({ lastKey: { id: 20 }, done: false, rowsDone: 20 });
    await h.backfill.delivered(high3!);
    await h.backfill.finished();
    expect(await h.progress.load()).toBeUndefined();
  });

  it('reads no chunk before the previous one was handed over, and few ahead of delivery', async () => {
    await db.query(`CREATE TABLE t_pressure (id int PRIMARY KEY);
                    INSERT INTO t_pressure SELECT generate_series(1, 30)`);
    const h = harness([{ table: 'public.t_pressure' }], {
      chunkSize: 5,
      maxUndeliveredChunks: 2,
      slowStreamWarningMs: 100,
    });
    const stream = await openStream(h.backfill, { 'public.t_pressure': ['id'] });
    await h.backfill.start('requested');
    await sleep(300);
    expect(h.reads).toHaveLength(1); // the stream has not reached the first high watermark
    expect(h.logLines.some((l) => l.level === 'warn' && String(l.msg).includes('is it running'))).toBe(true);

    await stream.pollUntil(() => stream.handovers().length >= 2);
    for (let i = 0; i < 10; i++) {
      await stream.poll();
      await sleep(20);
    }
    expect(stream.handovers()).toHaveLength(2);
    expect(h.reads).toHaveLength(2); // two chunks handed over and not delivered: the third waits

    await h.backfill.delivered(stream.handovers()[0]!.lsn);
    await stream.pollUntil(() => stream.handovers().length >= 3);
    expect(h.reads).toHaveLength(3);
    await h.backfill.delivered(stream.handovers().at(-1)!.lsn);
    await deliverToEnd(stream, h.backfill);
    expect(h.reads.map((r) => r.rows)).toEqual([5, 5, 5, 5, 5, 5]);
  });

  it('after a crash, continues after the last delivered chunk and ignores the old run’s watermarks', async () => {
    await db.query(`CREATE TABLE t_restart (id int PRIMARY KEY);
                    INSERT INTO t_restart SELECT generate_series(1, 35)`);
    const stateDir = join(stateRoot, 'restart');
    const keys = { 'public.t_restart': ['id'] };
    const before = harness([{ table: 'public.t_restart' }], { chunkSize: 10, stateDir });
    // The restarted daemon's stream replays from before the crashed run's watermarks.
    const replaying = await WalStream.open(db, `backfill_${++slots}`, keys, {
      observe: () => {},
      onMessage: () => undefined,
    });
    const crashed = await openStream(before.backfill, keys);
    await before.backfill.start('requested');
    await crashed.pollUntil(() => crashed.handovers().length >= 2);
    await before.backfill.delivered(crashed.handovers()[0]!.lsn); // chunk 2 was handed over, never delivered
    expect((await before.progress.load())?.tables['public.t_restart']?.lastKey).toEqual({ id: 10 });

    const after = harness([{ table: 'public.t_restart' }], { chunkSize: 10, stateDir });
    const stream = replaying;
    stream.consumer = after.backfill;
    expect(await after.backfill.resume()).toBe(true);
    await deliverToEnd(stream, after.backfill);

    expect(after.reads.map((r) => r.afterKey)).toEqual([{ id: 10 }, { id: 20 }, { id: 30 }]);
    const oldWatermarks = stream.events.filter(
      (e) => e.kind === 'message' && before.emitted.some((w) => w.lsn === e.message.lsn),
    );
    expect(oldWatermarks.length).toBeGreaterThanOrEqual(4);
    expect(oldWatermarks.every((e) => e.kind === 'message' && e.handedOver === undefined)).toBe(true);
    expect(stream.handovers().flatMap((c) => ids(c.rows))).toEqual(range(11, 35));
    expect(await after.progress.load()).toBeUndefined();
  });

  it('matches composite, UUID and enum keys from the stream with the rows it read, camelCase names included', async () => {
    await db.query(`
      CREATE TABLE t_pairs (tenant int, code text, name text, PRIMARY KEY (tenant, code));
      INSERT INTO t_pairs SELECT t, c, 'v0' FROM generate_series(1, 2) t, unnest(ARRAY['x', 'y']) c;
      CREATE TABLE t_uuids (id uuid PRIMARY KEY, name text);
      INSERT INTO t_uuids SELECT ('00000000-0000-0000-0000-00000000000' || g)::uuid, 'v0' FROM generate_series(1, 4) g;
      CREATE TABLE t_moods (m mood PRIMARY KEY, name text);
      INSERT INTO t_moods VALUES ('happy', 'v0'), ('sad', 'v0'), ('ok', 'v0');
      CREATE SCHEMA "Crm";
      CREATE TABLE "Crm"."peopleX" ("personId" int PRIMARY KEY, "fullName" text);
      INSERT INTO "Crm"."peopleX" SELECT g, 'v0' FROM generate_series(1, 3) g;
    `);
    const changes: Record<string, string> = {
      'public.t_pairs': `UPDATE t_pairs SET name = 'new' WHERE tenant = 1 AND code = 'y'`,
      'public.t_uuids': `UPDATE t_uuids SET name = 'new' WHERE id = '00000000-0000-0000-0000-000000000003'`,
      'public.t_moods': `UPDATE t_moods SET name = 'new' WHERE m = 'ok'`,
      'Crm.peopleX': `UPDATE "Crm"."peopleX" SET "fullName" = 'new' WHERE "personId" = 2`,
    };
    const h = harness(
      [
        { table: 'public.t_pairs' },
        { table: 'public.t_uuids' },
        { table: 'public.t_moods' },
        { table: 'Crm.peopleX' },
      ],
      { chunkSize: 100, hooks: { after: (shape) => db.query(changes[shape.table]!) } },
    );
    const stream = await openStream(h.backfill, {
      'public.t_pairs': ['tenant', 'code'],
      'public.t_uuids': ['id'],
      'public.t_moods': ['m'],
      'Crm.peopleX': ['personId'],
    });
    await h.backfill.start('first start');
    await deliverToEnd(stream, h.backfill);

    const byTable = stream.handovers().map((c) => c.rows.map((r) => r.key));
    expect(byTable).toEqual([
      [
        { tenant: 1, code: 'x' },
        { tenant: 2, code: 'x' },
        { tenant: 2, code: 'y' },
      ],
      [
        { id: '00000000-0000-0000-0000-000000000001' },
        { id: '00000000-0000-0000-0000-000000000002' },
        { id: '00000000-0000-0000-0000-000000000004' },
      ],
      [{ m: 'sad' }, { m: 'happy' }],
      [{ personId: 1 }, { personId: 3 }],
    ]);
    expect(
      stream.handovers().flatMap((c) => c.rows.map((r) => r.row?.name ?? r.row?.fullName)),
    ).not.toContain('new');
  });

  it('finishes an empty table at once, and a table that ends on a full chunk with that chunk', async () => {
    await db.query(`CREATE TABLE t_empty (id int PRIMARY KEY);
                    CREATE TABLE t_exact (id int PRIMARY KEY);
                    INSERT INTO t_exact SELECT generate_series(1, 10)`);
    const empty = harness([{ table: 'public.t_empty' }], { chunkSize: 5 });
    await empty.backfill.start('requested');
    await empty.backfill.finished(); // no stream needed
    expect(empty.reads).toEqual([]);
    expect(empty.emitted).toEqual([]);
    expect(await empty.progress.load()).toBeUndefined();

    const exact = harness([{ table: 'public.t_exact' }], { chunkSize: 5 });
    const stream = await openStream(exact.backfill, { 'public.t_exact': ['id'] });
    await exact.backfill.start('requested');
    await deliverToEnd(stream, exact.backfill);
    expect(exact.reads.map((r) => r.rows)).toEqual([5, 5]);
    expect(stream.handovers().map((c) => ids(c.rows))).toEqual([range(1, 5), range(6, 10)]);
  });

  it('ignores logical messages that are not this run’s watermarks', async () => {
    await db.query(`CREATE TABLE t_foreign (id int PRIMARY KEY); INSERT INTO t_foreign VALUES (1)`);
    const h = harness([{ table: 'public.t_foreign' }], { chunkSize: 10 });
    const stream = await openStream(h.backfill, { 'public.t_foreign': ['id'] });
    await h.backfill.start('requested');
    await stream.waitForWatermark('"kind":"high"');
    const ours = h.emitted.find((e) => e.watermark.kind === 'high')!;
    const foreign = (watermark: Partial<Watermark>) => ({
      prefix: WATERMARK_PREFIX,
      content: JSON.stringify({ ...ours.watermark, ...watermark }),
      lsn: ours.lsn,
    });
    expect(
      h.backfill.onMessage({ prefix: 'verbose_sync_heartbeat', content: '{}', lsn: 1n }),
    ).toBeUndefined();
    expect(h.backfill.onMessage({ prefix: WATERMARK_PREFIX, content: 'not json', lsn: 1n })).toBeUndefined();
    expect(h.backfill.onMessage(foreign({ resync: 'an older resync' }))).toBeUndefined();
    expect(h.backfill.onMessage(foreign({ run: 'a crashed process' }))).toBeUndefined();
    expect(h.backfill.onMessage(foreign({ chunk: 99 }))).toBeUndefined();
    // The real one, as bytes (the replication library hands message content over as a Buffer).
    const rows = h.backfill.onMessage({ ...foreign({}), content: Buffer.from(foreign({}).content) });
    expect(rows?.map((r) => r.key)).toEqual([{ id: 1 }]);
    await h.backfill.delivered(ours.lsn);
    await h.backfill.finished();
  });

  it('stops after the current step, safely twice, keeping the persisted progress', async () => {
    await db.query(
      `CREATE TABLE t_stop (id int PRIMARY KEY); INSERT INTO t_stop SELECT generate_series(1, 20)`,
    );
    const h = harness([{ table: 'public.t_stop' }], { chunkSize: 5 });
    const stream = await openStream(h.backfill, { 'public.t_stop': ['id'] });
    await h.backfill.start('requested');
    await stream.pollUntil(() => stream.handovers().length >= 1);
    await h.backfill.delivered(stream.handovers()[0]!.lsn);
    await Promise.all([h.backfill.stop(), h.backfill.stop()]);
    await h.backfill.stop();
    expect(h.backfill.running).toBe(false);
    await h.backfill.finished();
    expect((await h.progress.load())?.tables['public.t_stop']).toMatchObject({
      lastKey: { id: 5 },
      done: false,
    });
    await expect(h.backfill.start('requested')).rejects.toThrow(/stopped/);
  });

  it('surfaces a failed read through onError and finished(), keeping the progress', async () => {
    await db.query(`CREATE TABLE t_fail (id int PRIMARY KEY); INSERT INTO t_fail VALUES (1)`);
    const h = harness([{ table: 'public.t_fail' }], {
      chunkSize: 5,
      hooks: { before: () => Promise.reject(new Error('connection reset')) },
    });
    await h.backfill.start('requested');
    await expect(h.backfill.finished()).rejects.toThrow('connection reset');
    expect(h.errors.map((e) => e.message)).toEqual(['connection reset']);
    expect(h.backfill.running).toBe(false);
    expect(await h.progress.load()).toBeDefined();
    expect(h.logLines.some((l) => l.msg === 'full resync failed')).toBe(true);
  });

  it('converges with a concurrent writer, never putting an older version over a newer one', async () => {
    await db.query(`CREATE TABLE t_busy (id int PRIMARY KEY, version int NOT NULL);
                    INSERT INTO t_busy SELECT g, 0 FROM generate_series(1, 300) g`);
    // A pause after each read widens the windows, so the writer lands in many of them.
    const h = harness([{ table: 'public.t_busy' }], { chunkSize: 20, hooks: { after: () => sleep(10) } });
    const stream = await openStream(h.backfill, { 'public.t_busy': ['id'] });
    const writer = new pg.Client(db.url);
    await writer.connect();
    let writing = true;
    let nextId = 1_000;
    const random = (n: number) => Math.floor(Math.random() * n) + 1;
    const writes = (async () => {
      while (writing) {
        const pick = Math.random();
        if (pick < 0.7)
          await writer.query(`UPDATE t_busy SET version = version + 1 WHERE id = $1`, [random(300)]);
        else if (pick < 0.8) await writer.query(`DELETE FROM t_busy WHERE id = $1`, [random(300)]);
        else if (pick < 0.9) await writer.query(`INSERT INTO t_busy VALUES ($1, 0)`, [nextId++]);
        else {
          // A key change: the row leaves its old key; its version moves on so the two are told apart.
          await writer.query(`UPDATE t_busy SET id = $2, version = version + 1 WHERE id = $1`, [
            random(300),
            nextId++,
          ]);
        }
      }
    })();
    try {
      await h.backfill.start('requested');
      await deliverToEnd(stream, h.backfill);
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
    await stream.catchUp();

    // Apply the stream as the pipeline would, in order, checking every chunk row against what came before it.
    const model = new Map<number, number>();
    let chunkRows = 0;
    for (const event of stream.events) {
      if (event.kind === 'change') {
        const { change } = event;
        if (change.oldKey) model.delete(Number(change.oldKey.id));
        if (change.op === 'delete') model.delete(Number(change.key.id));
        else model.set(Number(change.key.id), Number(change.row!.version));
      } else {
        for (const row of event.handedOver ?? []) {
          const id = Number(row.key.id);
          const seen = model.get(id);
          if (seen !== undefined) expect(Number(row.row!.version)).toBeGreaterThanOrEqual(seen);
          model.set(id, Number(row.row!.version));
          chunkRows++;
        }
      }
    }
    const { rows } = await db.query<{ id: number; version: number }>(`SELECT id, version FROM t_busy`);
    expect(new Map(rows.map((r) => [r.id, r.version]))).toEqual(model);
    expect(chunkRows).toBeGreaterThan(0);
    expect(stream.events.filter((e) => e.kind === 'change').length).toBeGreaterThan(0);
  });

  it('resumes with the tables mapped now: new ones are added, unmapped ones left out', async () => {
    await db.query(`CREATE TABLE t_added (id int PRIMARY KEY); INSERT INTO t_added VALUES (1), (2)`);
    const h = harness([{ table: 'public.t_added' }], { chunkSize: 5 });
    await h.progress.save({
      version: 1,
      id: 'earlier',
      startedAt: '2026-01-01T00:00:00.000Z',
      reason: 'scheduled',
      tables: { 'public.t_gone': { lastKey: { id: 3 }, done: false, rowsDone: 3, estimatedRows: 9 } },
    });
    const stream = await openStream(h.backfill, { 'public.t_added': ['id'] });
    expect(await h.backfill.resume()).toBe(true);
    const saved = await h.progress.load();
    expect(saved).toMatchObject({ id: 'earlier', reason: 'scheduled' });
    expect(saved?.tables).toEqual({
      'public.t_added': { lastKey: null, done: false, rowsDone: 0, estimatedRows: 2 },
    });
    await deliverToEnd(stream, h.backfill);
    expect(stream.handovers().flatMap((c) => ids(c.rows))).toEqual([1, 2]);
  });

  it('refuses to start on a table without a key, and has nothing to resume when no resync was begun', async () => {
    await db.query(`CREATE TABLE t_nokey (id int)`);
    const h = harness([{ table: 'public.t_nokey' }], { chunkSize: 5 });
    await expect(h.backfill.start('requested')).rejects.toThrow(/t_nokey has no primary key/);
    expect(await h.progress.load()).toBeUndefined();
    expect(await h.backfill.resume()).toBe(false);
    expect(h.backfill.running).toBe(false);
  });
});
