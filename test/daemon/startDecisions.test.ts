import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { Metrics } from '../../src/ops/metrics.js';
import { SlotLostError } from '../../src/source/setup.js';
import { testConfigYaml } from '../support/configYaml.js';
import { loggerInto } from '../support/logLines.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

const SCHEMA = `
  CREATE TABLE people (id int PRIMARY KEY, name text, mobile text);
  INSERT INTO people SELECT i, 'Person ' || i, '+1212555' || lpad(i::text, 4, '0') FROM generate_series(1, 300) i;`;
const MAPPINGS = `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`;

/** What a start decides from the slot, the checkpoint, the first-start marker and the flags. */
describe('start-up decisions that must never skip a row', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await createPipeline('start', MAPPINGS, SCHEMA);
  });
  afterEach(() => p.close());

  const slotExists = async () =>
    (await p.db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [p.db.name])).rowCount === 1;
  const dropSlot = () => p.db.query(`SELECT pg_drop_replication_slot($1)`, [p.db.name]);

  it('a dry run on a fresh deployment leaves the first load owed to the real run', async () => {
    const dry = await p.start({ dryRun: true });
    await dry.stop();
    expect(p.simulator.store.size).toBe(0);
    const real = await p.start();
    await eventually(() => p.simulator.store.size === 300, 20_000, 'every existing row after the dry run');
    await real.stop();
  });

  it('a slot dropped while state_dir holds a checkpoint stops every start, until --full-resync reloads', async () => {
    const first = await p.start();
    await eventually(() => p.simulator.store.size === 300, 20_000, 'the first load');
    await first.stop();
    await dropSlot();
    await p.db.query(`UPDATE people SET name = 'Changed while the slot was gone' WHERE id = 7`);

    await expect(p.start()).rejects.toBeInstanceOf(SlotLostError);
    expect(await slotExists()).toBe(false);
    await expect(p.start()).rejects.toThrow(/--full-resync/);

    const recovered = await p.start({ fullResync: true });
    await eventually(
      () => p.simulator.store.contact('+12125550007')?.first_name === 'Changed while the slot was gone',
      20_000,
      'the change made while the slot was gone',
    );
    await recovered.stop();
  });

  it("--full-resync with a new slot reads every table again, not from an old resync's progress", async () => {
    await p.db.query(
      `INSERT INTO people SELECT i, 'Person ' || i, '+1212555' || lpad(i::text, 4, '0') FROM generate_series(301, 3000) i`,
    );
    p.simulator.setFaults({ rateLimitPerSecond: 1 });
    const first = await p.start({ fullResync: true });
    const progress = join(p.stateDir, 'resync.json');
    await eventually(
      async () => JSON.parse(await readFile(progress, 'utf8')).tables['public.people']?.lastKey !== null,
      20_000,
      'a first delivered chunk',
    );
    await first.stop();
    await dropSlot();
    await p.db.query(`UPDATE people SET name = 'Early row, changed' WHERE id = 1`);

    p.simulator.setFaults({ rateLimitPerSecond: null });
    const again = await p.start({ fullResync: true });
    await eventually(
      () => p.simulator.store.contact('+12125550001')?.first_name === 'Early row, changed',
      20_000,
      'the early row read again',
    );
    await again.stop();
  });

  it('a second instance on the same slot stands by, and begins its --full-resync only once it takes over', async () => {
    const active = await p.start();
    const finished = () => p.logs.filter((line) => line.msg === 'full resync finished').length;
    await eventually(() => finished() === 1 && p.simulator.store.size === 300, 20_000, 'the first load');

    const standby = await p.start({ fullResync: true });
    expect(p.logs.map((line) => String(line.msg))).toContainEqual(expect.stringMatching(/^standing by/));
    await p.db.query(`UPDATE people SET name = 'Changed before the takeover' WHERE id = 9`);
    await eventually(
      () => p.simulator.store.contact('+12125550009')?.first_name === 'Changed before the takeover',
      10_000,
      'the change, through the active instance',
    );

    await active.stop();
    await eventually(() => finished() === 2, 30_000, "the standby's resync, after it took the slot over");
    await standby.stop();
  });

  it('warns that a table mapped on an existing slot streams from now on, without its existing rows', async () => {
    const first = await p.start();
    await eventually(() => p.simulator.store.size === 300, 20_000, 'the first load');
    await first.stop();
    await p.db.query(`CREATE TABLE leads (id int PRIMARY KEY, mobile text);
      INSERT INTO leads VALUES (1, '+12125559001')`);
    const withLeads = `${MAPPINGS}
  - table: public.leads
    fields: { phone: mobile }`;
    const yaml = testConfigYaml({
      db: p.db,
      verboseUrl: p.simulator.url,
      stateDir: p.stateDir,
      mappings: withLeads,
    });
    const daemon = new Daemon(parseConfig(yaml, 'sync.yaml', {}).config, {
      fullResync: false,
      dryRun: false,
      log: loggerInto(p.logs),
      metrics: new Metrics({ defaults: false }),
    });
    try {
      await daemon.start();
      expect(p.logs).toContainEqual(
        expect.objectContaining({
          msg: expect.stringMatching(/^tables newly mapped.*run verbose-sync --full-resync once$/),
          tables: ['public.leads'],
        }),
      );
      await p.db.query(`INSERT INTO leads VALUES (2, '+12125559002')`);
      await eventually(
        () => p.simulator.store.contact('+12125559002'),
        10_000,
        'a lead added after the start',
      );
      expect(p.simulator.store.contact('+12125559001')).toBeUndefined();
    } finally {
      await daemon.stop();
    }
  });

  it('refuses to start on a mapped column that replication does not send, before creating anything', async () => {
    await p.db.query(`ALTER TABLE people ADD COLUMN shout text GENERATED ALWAYS AS (upper(name)) STORED`);
    const mappings = `
mappings:
  - table: public.people
    fields: { phone: mobil, first_name: shout }`;
    const yaml = testConfigYaml({ db: p.db, verboseUrl: p.simulator.url, stateDir: p.stateDir, mappings });
    const daemon = new Daemon(parseConfig(yaml, 'sync.yaml', {}).config, {
      fullResync: false,
      dryRun: false,
      log: loggerInto(p.logs),
      metrics: new Metrics({ defaults: false }),
    });
    try {
      const start = daemon.start();
      await expect(start).rejects.toThrow(
        /Column "mobil" of public\.people is mapped but replication does not send it: there is no such column \(did you mean mobile\?\)/,
      );
      await expect(start).rejects.toThrow(/Column "shout" of public\.people .*or it is a generated column/);
      expect(await slotExists()).toBe(false);
    } finally {
      await daemon.stop().catch(() => {});
    }
  });
});
