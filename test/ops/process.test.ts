import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
