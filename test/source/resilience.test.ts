import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeStream } from '../../src/source/changeStream.js';
import { SlotLostError, SourceError } from '../../src/source/setup.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { Collector, counterValue, slotRow, streamFor, waitFor } from './helpers.js';

describe('ChangeStream: drops, standby, backpressure and acknowledgement', () => {
  let db: TestDatabase;
  const streams: ChangeStream[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('source_resilience');
  });
  afterEach(async () => {
    await Promise.all(streams.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await db?.drop();
  });

  const ids = (changes: { row: unknown }[]) => changes.map((c) => Number((c.row as { id: number }).id));
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('reconnects after its walsender is terminated mid-transaction, and the transaction arrives whole once', async () => {
    await db.query('CREATE TABLE dropped (id int PRIMARY KEY, name text)');
    const f = await streamFor(db.url, 'resilience_drop', ['public.dropped']);
    streams.push(f.stream);
    await f.stream.start();
    await db.query(`INSERT INTO dropped SELECT g, 'a' FROM generate_series(1, 10) g`);
    await waitFor(() => f.collector.rows('public.dropped').length === 10);

    // Block inside a 20,000-row transaction, kill the walsender, then let the handler go on.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let seen = 0;
    let blocked = false;
    f.collector.beforeChange = async () => {
      if (++seen === 100) {
        blocked = true;
        await gate;
      }
    };
    await db.query(`INSERT INTO dropped SELECT g, 'b' FROM generate_series(11, 20010) g`);
    await waitFor(() => blocked, { what: 'the handler to block mid-transaction' });
    const before = await slotRow(db.sql, 'resilience_drop');
    await db.query('SELECT pg_terminate_backend($1)', [before!.activePid]);
    release();
    await db.query(`INSERT INTO dropped SELECT g, 'c' FROM generate_series(20011, 20020) g`);

    await waitFor(() => f.collector.rows('public.dropped').length >= 20_020, { what: 'every row' });
    await waitFor(async () => (await slotRow(db.sql, 'resilience_drop'))?.activePid !== before!.activePid);
    expect(ids(f.collector.rows('public.dropped'))).toEqual(range(1, 20_020));
    expect(f.collector.rollbacks).toBeGreaterThanOrEqual(1);
    expect(f.collector.violations).toEqual([]);
    expect(await counterValue(f.metrics, 'verbose_sync_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect(f.stream.connected).toBe(true);
  });

  it('a second stream on the same slot waits as a standby and takes over from the acknowledged position', async () => {
    await db.query('CREATE TABLE shared (id int PRIMARY KEY)');
    // One downstream (one checkpoint) shared by both instances, as two daemons on one state would.
    const collector = new Collector();
    const first = await streamFor(db.url, 'resilience_standby', ['public.shared'], { collector });
    const second = await streamFor(db.url, 'resilience_standby', ['public.shared'], { collector });
    streams.push(first.stream, second.stream);
    await first.stream.start();
    await second.stream.start();
    expect(first.stream.connected).toBe(true);
    expect(second.stream.connected).toBe(false);

    for (const id of range(1, 5)) await db.query('INSERT INTO shared VALUES ($1)', [id]);
    await waitFor(() => collector.rows('public.shared').length === 5);
    // Several take-over attempts have failed by now; the standby said so once.
    await waitFor(() => second.lines.filter((l) => String(l.msg).includes('standby')).length === 1);

    await first.stream.stop();
    const lastCommit = collector.commits.at(-1)!;
    // The final status acknowledged everything the first instance delivered.
    expect((await slotRow(db.sql, 'resilience_standby'))!.confirmed).toBe(lastCommit + 1n);
    for (const id of range(6, 10)) await db.query('INSERT INTO shared VALUES ($1)', [id]);
    await waitFor(() => second.stream.connected, { what: 'the standby to take over' });
    await waitFor(() => collector.rows('public.shared').length >= 10);
    expect(ids(collector.rows('public.shared'))).toEqual(range(1, 10));
    expect(collector.violations).toEqual([]);
    expect(second.lines.filter((l) => String(l.msg).includes('standby'))).toHaveLength(1);
    expect(second.lines.some((l) => String(l.msg).includes('took it over'))).toBe(true);
  });

  it('pauses reading while the handler is blocked, keeps the connection alive, then delivers everything', async () => {
    await db.query('CREATE TABLE slow (id int PRIMARY KEY, payload text)');
    // The server drops a client it has not heard from for 1 s: status updates must keep going out.
    const url = new URL(db.url);
    url.searchParams.set('options', '-c wal_sender_timeout=1000');
    const f = await streamFor(url.toString(), 'resilience_slow', ['public.slow'], { statusIntervalMs: 200 });
    streams.push(f.stream);
    await f.stream.start();
    const pid = (await slotRow(db.sql, 'resilience_slow'))!.activePid;
    const start = (await slotRow(db.sql, 'resilience_slow'))!.confirmed;

    const release = f.collector.block();
    // ~40 MB of changes: far more than socket buffers hold.
    await db.query(`INSERT INTO slow SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 40000) g`);
    await waitFor(() => f.collector.blocked === 1);
    // Hold the handler for longer than two wal_sender_timeouts.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const { received, handled } = f.stream.stats;
    expect(received - handled).toBeLessThan(4_000); // what one socket read holds, not the 40,000 rows
    expect((await slotRow(db.sql, 'resilience_slow'))!.activePid).toBe(pid);
    expect(f.stream.connected).toBe(true);

    release();
    await waitFor(() => f.collector.rows('public.slow').length === 40_000, { what: 'every row' });
    expect(ids(f.collector.rows('public.slow'))).toEqual(range(1, 40_000));
    await waitFor(async () => (await slotRow(db.sql, 'resilience_slow'))!.confirmed > start);
    expect(await counterValue(f.metrics, 'verbose_sync_reconnects_total')).toBe(0);
    expect((await slotRow(db.sql, 'resilience_slow'))!.activePid).toBe(pid);
  });

  it('acknowledges only what acknowledged() returns, never what it merely received', async () => {
    await db.query('CREATE TABLE acked (id int PRIMARY KEY)');
    const collector = new Collector();
    collector.ack = 0n;
    const f = await streamFor(db.url, 'resilience_ack', ['public.acked'], {
      collector,
      statusIntervalMs: 100,
    });
    streams.push(f.stream);
    await f.stream.start();
    const initial = (await slotRow(db.sql, 'resilience_ack'))!;

    await db.query('INSERT INTO acked VALUES (1), (2)');
    await db.query('INSERT INTO acked VALUES (3)');
    await waitFor(() => collector.rows('public.acked').length === 3);
    const { rows } = await db.query<{ now: Date }>('SELECT now()');
    // Wait for status updates sent after the changes arrived.
    await waitFor(async () => {
      const r = await db.query<{ reply_time: Date }>(
        'SELECT reply_time FROM pg_stat_replication WHERE pid = $1',
        [initial.activePid],
      );
      return r.rows[0] && r.rows[0].reply_time > rows[0]!.now;
    });
    expect((await slotRow(db.sql, 'resilience_ack'))!.confirmed).toBe(initial.confirmed);

    const firstCommit = collector.rows('public.acked')[0]!.commitLsn;
    collector.ack = firstCommit;
    await waitFor(async () => (await slotRow(db.sql, 'resilience_ack'))!.confirmed !== initial.confirmed);
    // The server now holds exactly "everything up to and including that commit".
    expect((await slotRow(db.sql, 'resilience_ack'))!.confirmed).toBe(firstCommit + 1n);

    // After a stop and start, only the unacknowledged transaction comes again.
    await f.stream.stop();
    expect((await slotRow(db.sql, 'resilience_ack'))!.confirmed).toBe(firstCommit + 1n);
    // A fresh downstream that only knows the checkpoint.
    const fresh = new Collector();
    fresh.ack = firstCommit;
    const restarted = await streamFor(db.url, 'resilience_ack', ['public.acked'], { collector: fresh });
    streams.push(restarted.stream);
    await restarted.stream.start();
    await waitFor(() => fresh.rows('public.acked').length === 1);
    expect(ids(fresh.rows('public.acked'))).toEqual([3]);
  });

  it('moves an idle publication’s slot forward with heartbeats while unpublished tables write', async () => {
    await db.query('CREATE TABLE idle (id int PRIMARY KEY); CREATE TABLE noisy (id serial PRIMARY KEY)');
    const f = await streamFor(db.url, 'resilience_idle', ['public.idle'], { heartbeatIntervalMs: 100 });
    streams.push(f.stream);
    await f.stream.start();
    const initial = (await slotRow(db.sql, 'resilience_idle'))!.confirmed;
    await waitFor(
      async () => {
        await db.query('INSERT INTO noisy DEFAULT VALUES');
        return (await slotRow(db.sql, 'resilience_idle'))!.confirmed > initial;
      },
      { intervalMs: 50 },
    );
    expect(f.collector.committed).toEqual([]);
    expect(f.collector.commits.length).toBeGreaterThan(0);
    expect(await counterValue(f.metrics, 'verbose_sync_heartbeats_total')).toBeGreaterThan(0);
  });

  it('fails with SlotLostError when its slot is dropped under it', async () => {
    await db.query('CREATE TABLE doomed (id int PRIMARY KEY)');
    const f = await streamFor(db.url, 'resilience_lost', ['public.doomed'], {
      reconnect: { minMs: 400, maxMs: 1_000 },
    });
    streams.push(f.stream);
    await f.stream.start();
    await waitFor(async () => {
      const pid = (await slotRow(db.sql, 'resilience_lost'))?.activePid;
      if (pid) await db.query('SELECT pg_terminate_backend($1, 5000)', [pid]);
      try {
        await db.query(`SELECT pg_drop_replication_slot('resilience_lost')`);
        return true;
      } catch {
        return false;
      }
    });
    const error = await f.stream.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SlotLostError);
    expect((error as Error).message).toContain('resilience_lost');
    expect((error as Error).message).toContain('verbose-sync --full-resync');
    expect(f.stream.connected).toBe(false);
    expect(f.lines.some((l) => l.level === 50)).toBe(true);
  });

  it('fails with a SourceError when its publication is dropped (the server would silently stream nothing)', async () => {
    await db.query('CREATE TABLE unpublished (id int PRIMARY KEY)');
    const f = await streamFor(db.url, 'resilience_nopub', ['public.unpublished']);
    streams.push(f.stream);
    await f.stream.start();
    await db.query('DROP PUBLICATION resilience_nopub');
    await expect(f.stream.done).rejects.toThrow(SourceError);
    await expect(f.stream.done).rejects.toThrow(
      /Publication "resilience_nopub" no longer exists.*--full-resync/,
    );
    expect(f.stream.connected).toBe(false);
  });

  it('start() and stop() are safe to call twice, concurrently, or in any order', async () => {
    await db.query('CREATE TABLE lifecycle (id int PRIMARY KEY)');
    const never = await streamFor(db.url, 'resilience_life', ['public.lifecycle']);
    await Promise.all([never.stream.stop(), never.stream.stop()]);
    await expect(never.stream.done).resolves.toBeUndefined();
    await expect(never.stream.start()).rejects.toThrow(/stopped/);

    const f = await streamFor(db.url, 'resilience_life', ['public.lifecycle']);
    const starting = f.stream.start();
    expect(f.stream.start()).toBe(starting);
    await starting;
    const first = f.stream.stop();
    const second = f.stream.stop();
    expect(second).toBe(first);
    await first;
    await expect(f.stream.done).resolves.toBeUndefined();
    expect(f.stream.connected).toBe(false);
    expect((await slotRow(db.sql, 'resilience_life'))?.activePid).toBeNull();
  });
});
