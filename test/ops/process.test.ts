import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageNodeFlags } from '../../src/bench/support/daemonProcess.js';
import { spawnDaemon } from '../support/daemonProcess.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

describe('the daemon as a process', () => {
  let p: Pipeline;
  let dir: string;
  beforeAll(async () => {
    p = await createPipeline(
      'process',
      `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`,
      `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`,
    );
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-process-'));
  });
  afterAll(async () => {
    await p.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams, then on SIGTERM finishes, acknowledges and exits 0', async () => {
    const daemon = await spawnDaemon(dir, p.yaml());
    await daemon.waitForLog(/^streaming/);
    await p.db.query(`INSERT INTO people VALUES (1, 'Ada', '+12125550101')`);
    await eventually(() => p.simulator.store.contact('+12125550101'), 10_000, 'the contact');
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(daemon.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });

  it('warns at start when the heap limit is small for max_pending_contacts, and not with the image settings', async () => {
    const small = await spawnDaemon(dir, p.yaml('max_pending_contacts: 200000'), [], {
      NODE_OPTIONS: '--max-old-space-size=64',
    });
    const warning = await small.waitForLog(
      /^the heap limit \(\d+ MB\) is small for max_pending_contacts 200000/,
    );
    expect(String(warning.msg)).toMatch(/raise --max-old-space-size in NODE_OPTIONS by \d+ MB or more/);
    small.kill('SIGTERM');
    expect(await small.exited).toEqual({ code: 0, signal: null });

    const image = await spawnDaemon(dir, p.yaml(), [], { NODE_OPTIONS: (await imageNodeFlags()).join(' ') });
    await image.waitForLog(/^streaming/);
    image.kill('SIGTERM');
    expect(await image.exited).toEqual({ code: 0, signal: null });
    expect(image.logs.some((line) => /heap limit/.test(String(line.msg)))).toBe(false);
  });

  it('with --dry-run prints each request it would make, sends nothing and acknowledges nothing', async () => {
    await p.db.query(`INSERT INTO people VALUES (2, 'Grace', '+12125550102')`);
    const upserts = () => p.simulator.requests.entries().filter((r) => r.method === 'POST').length;
    const upsertsBefore = upserts();
    const slot = async () =>
      (
        await p.db.query<{ lsn: string }>(
          `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
          [p.db.name],
        )
      ).rows[0]!.lsn;
    const confirmed = await slot();
    const daemon = await spawnDaemon(dir, p.yaml(), ['--dry-run']);
    await daemon.waitForLog(/^streaming \(dry run/);
    await eventually(() => daemon.output().includes('"dry_run":true'), 10_000, 'a printed request');
    const printed = daemon
      .output()
      .split('\n')
      .filter((line) => line.includes('"dry_run":true'))
      .map((line) => JSON.parse(line));
    expect(printed.every((request) => request.dry_run === true)).toBe(true);
    expect(printed.flatMap((request) => request.contacts)).toContainEqual(
      expect.objectContaining({ phone: '+12125550102', first_name: 'Grace' }),
    );
    daemon.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
    expect(upserts()).toBe(upsertsBefore);
    expect(await slot()).toBe(confirmed);
  });

  it('exits 0 on a SIGTERM that arrives while it is still starting, leaving nothing open', async () => {
    const daemon = await spawnDaemon(dir, p.yaml());
    await daemon.waitForLog(/^verbose-sync starting/);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
  });
});
