import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const SCHEMA = `
  CREATE TYPE tier AS ENUM ('bronze', 'silver', 'gold');
  CREATE TABLE accounts (
    tenant int NOT NULL, code text NOT NULL, name text NOT NULL, mobile text NOT NULL,
    PRIMARY KEY (tenant, code)
  );
  CREATE TABLE leads (id uuid PRIMARY KEY, name text NOT NULL, mobile text NOT NULL);
  CREATE TABLE tiers (tier tier PRIMARY KEY, name text NOT NULL, mobile text NOT NULL);
  CREATE TABLE prospects (id int PRIMARY KEY, name text NOT NULL, mobile text NOT NULL);
  INSERT INTO accounts SELECT t, c, 'Account ' || t || c, '+1212530' || lpad((t * 100 + ascii(c))::text, 4, '0')
    FROM generate_series(1, 4) t, unnest(string_to_array('a,b,c,d,e,f,g,h,i,j', ',')) c;
  INSERT INTO leads SELECT md5(g::text)::uuid, 'Lead ' || g, '+1212540' || lpad(g::text, 4, '0')
    FROM generate_series(1, 30) g;
  INSERT INTO tiers VALUES ('gold', 'Gold Member', '+12125500001'), ('bronze', 'Bronze Member', '+12125500002'),
    ('silver', 'Silver Member', '+12125500003');`;

const mapping = (table: string) => `
  - table: public.${table}
    list: CRM ${table}
    fields:
      phone: mobile
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }`;

const MAPPINGS = `
mappings:${['accounts', 'leads', 'tiers', 'prospects'].map(mapping).join('')}`;

/** Small chunks, so every key shape is paged through several times. */
const SETTINGS = { chunkSize: 7, batchSize: 50, requestsPerSecond: 200 };

describe('--full-resync through the daemon, whatever the primary key', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_keys', MAPPINGS, SCHEMA);
  });
  afterAll(() => p.close());

  it('loads tables keyed by a composite, a UUID and an enum key, and finishes a table with no rows', async () => {
    const { daemon, logs } = await p.start(SETTINGS, { fullResync: true });
    await eventually(() => logs.some((l) => l.msg === 'full resync finished'), 20_000, 'the resync');
    await p.caughtUp();
    // The next test starts a daemon on the same slot: this one must be gone, whatever happens here.
    await daemon.stop();

    for (const [table, key] of [
      ['public.accounts', ['tenant', 'code']],
      ['public.leads', ['id']],
      ['public.tiers', ['tier']],
    ] as const) {
      const expected = await p.expectedContacts(table, [...key]);
      expect(expected.size, table).toBeGreaterThan(0);
      expect(p.mismatches(expected), table).toEqual([]);
    }
    expect(p.simulator.store.size).toBe(40 + 30 + 3);
    expect(p.simulator.store.listByName('CRM accounts')?.size).toBe(40);
    expect(p.simulator.store.contact('+12125500001')).toMatchObject({
      first_name: 'Gold',
      last_name: 'Member',
    });

    const finished = logs.filter((l) => l.msg === 'full resync: table finished');
    expect(finished.map((l) => [l.table, l.rows]).sort()).toEqual([
      ['public.accounts', 40],
      ['public.leads', 30],
      ['public.prospects', 0],
      ['public.tiers', 3],
    ]);
    expect(logs.find((l) => l.msg === 'full resync finished')).toMatchObject({ rows: 73 });
    expect(daemon.resyncRunning).toBe(false);
  });

  it('loads every row again when asked on a deployment that already streams', async () => {
    p.simulator.reset();
    await p.db.query(`UPDATE leads SET name = 'Renamed Lead' WHERE id = md5('7')::uuid`);
    const { daemon, logs } = await p.start(SETTINGS, { fullResync: true });
    await eventually(() => logs.some((l) => l.msg === 'full resync finished'), 20_000, 'the resync');
    await p.caughtUp();

    // The slot and the checkpoint were kept: only the resync is new.
    expect(logs.some((l) => String(l.msg).startsWith('created the replication slot'))).toBe(false);
    expect(logs.some((l) => String(l.msg).startsWith('first start'))).toBe(false);
    expect(logs.find((l) => l.msg === 'full resync running')).toMatchObject({ reason: 'requested' });
    expect(p.simulator.store.size).toBe(73);
    expect(p.simulator.store.contact('+12125400007')).toMatchObject({
      first_name: 'Renamed',
      last_name: 'Lead',
    });
    await daemon.stop();
  });
});
