import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/embedded/embeddedPostgres.js';
import { prepareSource, SlotLostError } from '../../src/source/setup.js';
import { counterValue, slotRow, streamFor, waitFor } from './helpers.js';

/** Tests that need a server of their own: restarting it, or invalidating a slot with max_slot_wal_keep_size. */
describe('ChangeStream on a server of its own', () => {
  let server: EmbeddedPostgres;
  let url: string;
  let sql: pg.Client;

  const connect = async () => {
    const client = new pg.Client(url);
    client.on('error', () => {});
    await client.connect();
    return client;
  };

  beforeAll(async () => {
    server = await startEmbeddedPostgres({ settings: { max_slot_wal_keep_size: '32MB' } });
    await server.createDatabase('crm');
    url = server.url('crm');
    sql = await connect();
  }, 120_000);

  afterAll(async () => {
    await sql?.end().catch(() => {});
    await server?.stop();
  });

  it('resumes after a server restart with nothing lost or reordered', async () => {
    await sql.query('CREATE TABLE people (id int PRIMARY KEY, name text)');
    const f = await streamFor(url, 'restart_slot', ['public.people'], {
      reconnect: { minMs: 100, maxMs: 500 },
    });
    try {
      await f.stream.start();
      for (let id = 1; id <= 5; id++) await sql.query(`INSERT INTO people VALUES ($1, 'before')`, [id]);
      await waitFor(() => f.collector.rows('public.people').length === 5);

      await server.restart();
      await sql.end().catch(() => {});
      sql = await connect();
      // Written while the stream may still be reconnecting.
      await sql.query(`INSERT INTO people SELECT g, 'after' FROM generate_series(6, 1005) g`);
      await waitFor(() => f.collector.rows('public.people').length >= 1005, { what: 'every row' });

      expect(f.collector.rows('public.people').map((c) => c.row?.id)).toEqual(
        Array.from({ length: 1005 }, (_, i) => i + 1),
      );
      expect(f.collector.violations).toEqual([]);
      expect(f.stream.connected).toBe(true);
      expect(await counterValue(f.metrics, 'verbose_sync_reconnects_total')).toBeGreaterThanOrEqual(1);
      // Reconnect attempts are logged one line each, without stack traces.
      const attempts = f.lines.filter((l) => l.msg === 'replication connection lost; reconnecting');
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      expect(attempts.every((l) => typeof l.err === 'string' && !String(l.err).includes('\n    at '))).toBe(
        true,
      );
    } finally {
      await f.stream.stop();
    }
  }, 60_000);

  it('lets the server restart while the handler is blocked mid-transaction, then delivers it whole', async () => {
    await sql.query('CREATE TABLE busy (id int PRIMARY KEY)');
    const f = await streamFor(url, 'busy_slot', ['public.busy'], { reconnect: { minMs: 100, maxMs: 500 } });
    try {
      await f.stream.start();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let seen = 0;
      f.collector.beforeChange = async () => {
        if (++seen === 10) await gate;
      };
      await sql.query('INSERT INTO busy SELECT g FROM generate_series(1, 5000) g');
      await waitFor(() => seen === 10);

      // PostgreSQL's shutdown waits for its walsenders; the stream must let go of its connection.
      await server.restart();
      release();
      await sql.end().catch(() => {});
      sql = await connect();
      await sql.query('INSERT INTO busy SELECT g FROM generate_series(5001, 5010) g');
      await waitFor(() => f.collector.rows('public.busy').length >= 5010, { what: 'every row' });
      expect(f.collector.rows('public.busy').map((c) => c.row?.id)).toEqual(
        Array.from({ length: 5010 }, (_, i) => i + 1),
      );
      expect(f.collector.rollbacks).toBeGreaterThanOrEqual(1);
      expect(f.collector.violations).toEqual([]);
    } finally {
      await f.stream.stop();
    }
  }, 60_000);

  it('refuses an invalidated slot with SlotLostError, and recreates it when asked to', async () => {
    await sql.query('CREATE TABLE lost (id int PRIMARY KEY)');
    const f = await streamFor(url, 'lost_slot', ['public.lost']);
    // The slot sits unused while more WAL than max_slot_wal_keep_size is written and checkpointed away.
    await waitFor(
      async () => {
        await sql.query('INSERT INTO lost SELECT coalesce(max(id), 0) + 1 FROM lost');
        await sql.query('SELECT pg_switch_wal()');
        await sql.query('CHECKPOINT');
        const { rows } = await sql.query(
          `SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'lost_slot'`,
        );
        return rows[0]?.wal_status === 'lost';
      },
      { what: 'the slot to be invalidated' },
    );

    const error = await f.stream.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SlotLostError);
    expect((error as Error).message).toMatch(/"lost_slot" was invalidated .*verbose-sync --full-resync/);
    await expect(f.stream.done).rejects.toBeInstanceOf(SlotLostError);
    await f.stream.stop();

    const options = { url, slot: 'lost_slot', publication: 'lost_slot', tables: ['public.lost'] };
    await expect(prepareSource(options)).rejects.toThrow(/was invalidated.*--full-resync/);
    const report = await prepareSource({ ...options, lostSlot: 'recreate' });
    expect(report.slotCreated).toBe(true);
    expect(report.slot.walStatus).not.toBe('lost');
    expect((await slotRow(sql, 'lost_slot'))?.activePid).toBeNull();
  }, 60_000);
});
