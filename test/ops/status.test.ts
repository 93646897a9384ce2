import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import type { StatusReport } from '../../src/ops/statusReport.js';
import { ProgressStore } from '../../src/resync/progressStore.js';
import { runCli } from '../support/cli.js';
import { spawnDaemon } from '../support/daemonProcess.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

const SCHEMA = `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`;
const MAPPINGS = `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`;

describe('verbose-sync status', () => {
  let p: Pipeline;
  let dir: string;
  let config: string;
  beforeAll(async () => {
    p = await createPipeline('status', MAPPINGS, SCHEMA);
    await p.db.query(
      `INSERT INTO people SELECT g, 'Person ' || g, '+1212555' || lpad(g::text, 4, '0') FROM generate_series(1, 20) g`,
    );
    await p.db.query(`INSERT INTO people VALUES (21, 'Typo', '12')`);
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-status-'));
    config = join(dir, 'sync.yaml');
  });
  afterAll(async () => {
    await p.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the slot, lag, checkpoint and rejects while the daemon runs', async () => {
    const daemon = await spawnDaemon(dir, p.yaml());
    await daemon.waitForLog(/^full resync finished/);
    await eventually(() => p.simulator.store.size === 20, 10_000, 'the first-start resync');
    const { rows } = await p.db.query<{ pid: number }>(
      'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
      [p.db.name],
    );

    const text = await runCli(['status', '--config', config]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`slot ${p.db.name}: active, streaming to server process ${rows[0]!.pid}`);
    expect(text.stdout).toContain('wal_status reserved');
    expect(text.stdout).toMatch(/lag \d+(\.\d)? (bytes|kB|MB) behind the server/);
    expect(text.stdout).toMatch(/checkpoint [0-9A-F]+\/[0-9A-F]+, written \d+ s ago/);
    expect(text.stdout).toContain('rejected contacts: 1 (mapping 1, api 0)');
    expect(text.stdout).toContain('public.people id=21 phone "12": too short');
    expect(text.stdout).toContain('full resync: none in progress');

    const json = await runCli(['status', '--config', config, '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report).toMatchObject({
      source: {
        status: {
          slot: { name: p.db.name, active: true, activePid: rows[0]!.pid, walStatus: 'reserved' },
          publication: { tables: ['public.people'] },
        },
      },
      state: { rejects: { value: { total: 1, byStage: { mapping: 1, api: 0 } } } },
    });
    expect('status' in report.source && report.source.status.slot?.lagBytes).toBeGreaterThanOrEqual(0);
    // What status read is the daemon's checkpoint file (which can only have moved forward since).
    const reported = report.state.checkpoint;
    const saved = JSON.parse(await readFile(join(p.stateDir, 'checkpoint.json'), 'utf8')) as { lsn: string };
    expect('value' in reported && reported.value && parseLsn(reported.value.lsn)).toBeLessThanOrEqual(
      parseLsn(saved.lsn),
    );

    daemon.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  });

  it('shows an interrupted full resync table by table, and an inactive slot', async () => {
    const progress = new ProgressStore(p.stateDir);
    await progress.save({
      version: 1,
      id: 'resync-1',
      startedAt: '2026-01-02T03:04:05.000Z',
      reason: 'requested',
      tables: { 'public.people': { lastKey: { id: 10 }, done: false, rowsDone: 10, estimatedRows: 21 } },
    });
    try {
      const text = await runCli(['status', '--config', config]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain(`slot ${p.db.name}: inactive`);
      expect(text.stdout).toContain('full resync in progress (requested, started 2026-01-02T03:04:05.000Z)');
      expect(text.stdout).toContain('public.people: 10 of ~21 rows');
    } finally {
      await progress.clear();
    }
  });

  it('exits 1 when the database cannot be reached, still reporting what state_dir holds', async () => {
    const unreachable = join(dir, 'unreachable.yaml');
    const url = new URL(p.db.url);
    url.port = '1';
    await writeFile(unreachable, p.yaml().replace(p.db.url, url.toString()));
    const result = await runCli(['status', '--config', unreachable]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('Database: cannot connect');
    expect(result.stdout).toMatch(/checkpoint [0-9A-F]+\/[0-9A-F]+, written/);
    expect(result.stdout).toContain('rejected contacts: 1 (mapping 1, api 0)');
  });
});
