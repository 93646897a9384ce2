import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { type DaemonProcess, spawnDaemon } from '../support/daemonProcess.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';
import { get, sample } from './scrape.js';

const SCHEMA = `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`;
const MAPPINGS = `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`;

/** Inserts `count` people from `first` on, with phones +1212555XXXX. */
async function insertPeople(p: Pipeline, first: number, count: number): Promise<string[]> {
  await p.db.query(
    `INSERT INTO people SELECT g, 'Person ' || g, '+1212555' || lpad(g::text, 4, '0')
       FROM generate_series($1::int, $2::int) g`,
    [first, first + count - 1],
  );
  return Array.from({ length: count }, (_, i) => `+1212555${String(first + i).padStart(4, '0')}`);
}

/** Waits until the daemon holds `count` contacts, then a while longer: its batch is then being sent. */
async function untilInFlight(daemon: DaemonProcess, count: number): Promise<void> {
  const started = await daemon.waitForLog(/^verbose-sync starting/);
  const metrics = `${String(started.ops)}/metrics`;
  await eventually(
    async () => sample((await get(metrics)).body, 'verbose_sync_coalescer_contacts') === count,
    20_000,
    `${count} contacts waiting`,
  );
  // The batch is due 50 ms (flush_interval_ms) after its first contact; the simulator holds it for seconds.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}

async function checkpointLsn(stateDir: string): Promise<bigint> {
  const file = JSON.parse(await readFile(join(stateDir, 'checkpoint.json'), 'utf8')) as { lsn: string };
  return parseLsn(file.lsn);
}

async function serverLsn(p: Pipeline): Promise<bigint> {
  const { rows } = await p.db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

describe('shutdown on SIGTERM, SIGINT and a second signal', () => {
  let p: Pipeline;
  let dir: string;
  beforeAll(async () => {
    p = await createPipeline('shutdown', MAPPINGS, SCHEMA);
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-shutdown-'));
  });
  afterAll(async () => {
    await p.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lets the batch in flight finish, acknowledges it, exits 0, and sends nothing twice after a restart', async () => {
    const daemon = await spawnDaemon(dir, p.yaml());
    // The first start loads the (empty) table; rows inserted meanwhile could come twice, by both ways.
    await daemon.waitForLog(/^full resync finished/);
    p.simulator.setFaults({ latencyMs: 3_000 });
    const phones = await insertPeople(p, 1, 40);
    await untilInFlight(daemon, 40);
    daemon.kill('SIGTERM');

    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    // The request was in flight when the signal came, and it was let finish.
    expect(phones.filter((phone) => !p.simulator.store.contact(phone))).toEqual([]);
    const writes = () => phones.map((phone) => p.simulator.store.contact(phone)?.writes);
    const writesBefore = writes();
    expect(daemon.logs.map((line) => line.msg)).toContain('stopped');

    p.simulator.setFaults({ latencyMs: 0 });
    const again = await spawnDaemon(dir, p.yaml());
    await again.waitForLog(/^streaming/);
    const [later] = await insertPeople(p, 100, 1);
    await eventually(() => p.simulator.store.contact(later!), 10_000, 'a change made after the restart');
    again.kill('SIGINT');
    expect(await again.exited).toEqual({ code: 0, signal: null });
    // What was delivered before the first shutdown was acknowledged: the restart did not send it again.
    expect(writes()).toEqual(writesBefore);
  });

  it('abandons a request slower than shutdown_timeout_ms, exits 0, and delivers its contacts after a restart', async () => {
    const daemon = await spawnDaemon(dir, p.yaml('shutdown_timeout_ms: 500'));
    await daemon.waitForLog(/^streaming/);
    p.simulator.setFaults({ latencyMs: 60_000 });
    const phones = await insertPeople(p, 200, 25);
    const afterInsert = await serverLsn(p);
    await untilInFlight(daemon, 25);
    daemon.kill('SIGTERM');

    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(daemon.logs.map((line) => line.msg)).toContain(
      'requests still in flight at the shutdown deadline were abandoned; their contacts stay unacknowledged',
    );
    // Not acknowledged: the checkpoint stays before the insert, so the slot will send it again.
    expect(await checkpointLsn(p.stateDir)).toBeLessThan(afterInsert);

    p.simulator.setFaults({ latencyMs: 0 });
    const again = await spawnDaemon(dir, p.yaml());
    await eventually(
      () => phones.every((phone) => p.simulator.store.contact(phone)),
      20_000,
      'the abandoned contacts, sent again after the restart',
    );
    again.kill('SIGTERM');
    expect(await again.exited).toEqual({ code: 0, signal: null });
  });

  it('exits at once on a second signal while the first one waits for a slow request', async () => {
    const daemon = await spawnDaemon(dir, p.yaml('shutdown_timeout_ms: 120000'));
    await daemon.waitForLog(/^streaming/);
    p.simulator.setFaults({ latencyMs: 60_000 });
    await insertPeople(p, 300, 5);
    await untilInFlight(daemon, 5);
    daemon.kill('SIGTERM');
    await daemon.waitForLog(/^shutting down/);
    daemon.kill('SIGTERM');

    // Well before the request (60 s) or the shutdown deadline (120 s) would have let it go.
    expect(await daemon.exited).toEqual({ code: 1, signal: null });
    expect(daemon.output()).toContain('received SIGTERM again: exiting now');
    p.simulator.setFaults({ latencyMs: 0 });
  });

  it('stop() of an in-process daemon is safe to call twice, concurrently and again later', async () => {
    const daemon = await p.start();
    const first = daemon.stop();
    const second = daemon.stop();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    await daemon.stop();
    await expect(daemon.done).resolves.toBeUndefined();
  });
});
