import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

const SCHEMA = `
  CREATE TABLE people (
    id bigserial PRIMARY KEY,
    name text,
    mobile text,
    phone text,
    active boolean NOT NULL DEFAULT true,
    segment text
  );`;

const MAPPINGS = `
mappings:
  - table: public.people
    where: { active: true }
    list: CRM people
    fields:
      phone: [mobile, phone]
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }
      source: { value: crm }`;

describe('the daemon, end to end', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline('daemon', MAPPINGS, SCHEMA);
    await p.db.query(
      `INSERT INTO people (name, mobile) SELECT 'Person ' || i, '+1212555' || lpad(i::text, 4, '0') FROM generate_series(1, 600) i`,
    );
  });
  afterAll(() => p.close());

  it('loads existing rows on its first start, then streams live changes into Verbose', async () => {
    const daemon = await p.start();
    expect(p.logs.some((l) => String(l.msg).startsWith('first start'))).toBe(true);
    await eventually(
      () => p.simulator.store.size === 600,
      20_000,
      '600 contacts from the first-start resync',
    );
    expect(p.simulator.store.contact('+12125550042')).toMatchObject({
      first_name: 'Person',
      last_name: '42',
      source: 'crm',
    });

    await p.db.query(`UPDATE people SET name = 'Ada Lovelace' WHERE id = 42`);
    await p.db.query(`INSERT INTO people (name, phone) VALUES ('Grace Hopper', '(212) 555-9999')`);
    await eventually(
      () => p.simulator.store.contact('+12125550042')?.first_name === 'Ada',
      10_000,
      'the update',
    );
    await eventually(
      () => p.simulator.store.contact('+12125559999')?.last_name === 'Hopper',
      10_000,
      'the insert',
    );
    await daemon.stop();
  });

  it('acknowledges the slot only up to what Verbose accepted, and resumes from there after a restart', async () => {
    p.simulator.setFaults({ errorRate: 1 });
    const daemon = await p.start();
    await p.db.query(`UPDATE people SET name = 'Katherine Johnson' WHERE id = 7`);
    await eventually(() => p.simulator.requests.countOf(500) > 0, 10_000, 'a failing request');
    const { rows: before } = await p.db.query<{ confirmed: string }>(
      `SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`,
      [p.db.name],
    );
    await daemon.stop();
    const { rows: after } = await p.db.query<{ confirmed: string; lsn: string }>(
      `SELECT confirmed_flush_lsn::text AS confirmed, pg_current_wal_lsn()::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
      [p.db.name],
    );
    expect(after[0]!.confirmed).toBe(before[0]!.confirmed);
    expect(p.simulator.store.contact('+12125550007')?.first_name).toBe('Person');

    p.simulator.setFaults({ errorRate: 0 });
    const again = await p.start();
    await eventually(
      () => p.simulator.store.contact('+12125550007')?.first_name === 'Katherine',
      10_000,
      'the redelivered update',
    );
    await again.stop();
  });

  it('spends no request on a change Verbose already has: an unmapped column, or the same number re-spelled', async () => {
    const daemon = await p.start();
    await p.db.query(`UPDATE people SET name = 'Mary Jackson' WHERE id = 11`);
    await eventually(
      () => p.simulator.store.contact('+12125550011')?.first_name === 'Mary',
      10_000,
      'the rename',
    );
    const posts = () => p.simulator.requests.entries().filter((r) => r.method === 'POST').length;
    const before = posts();

    await p.db.query(`UPDATE people SET segment = 'vip' WHERE id = 11`);
    await p.db.query(`UPDATE people SET mobile = '(212) 555-0011' WHERE id = 11`);
    const { rows } = await p.db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
    const [high, low] = rows[0]!.lsn.split('/').map((part) => BigInt(`0x${part}`));
    await eventually(
      () => (daemon.acknowledged ?? 0n) >= (high! << 32n) + low!,
      10_000,
      'both updates handled',
    );
    expect(posts()).toBe(before);

    await p.db.query(`UPDATE people SET name = 'Mary W. Jackson' WHERE id = 11`);
    await eventually(
      () => p.simulator.store.contact('+12125550011')?.last_name === 'W. Jackson',
      10_000,
      'a real change',
    );
    expect(posts()).toBe(before + 1);
    await daemon.stop();
  });
});
