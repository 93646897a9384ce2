import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon.js';
import { Metrics } from '../../src/ops/metrics.js';
import { type OpsServer, startOpsServer } from '../../src/ops/opsServer.js';
import { loggerInto } from '../support/logLines.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';
import { families, get, sample } from './scrape.js';

const SCHEMA = `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`;
const MAPPINGS = `
mappings:
  - table: public.people
    list: Ops people
    fields: { phone: mobile, first_name: name }`;

/** Every metric DESIGN.md and the operations guide name, plus two of Node's defaults. */
const NAMED = [
  'verbose_sync_replication_lag_bytes',
  'verbose_sync_changes_received_total',
  'verbose_sync_contacts_sent_total',
  'verbose_sync_requests_total',
  'verbose_sync_retries_total',
  'verbose_sync_rejects_total',
  'verbose_sync_batch_size',
  'verbose_sync_request_duration_seconds',
  'verbose_sync_coalescer_contacts',
  'verbose_sync_checkpoint_age_seconds',
  'verbose_sync_acknowledged_lsn',
  'verbose_sync_resync_rows_done',
  'verbose_sync_resync_rows_estimated',
  'verbose_sync_resync_running',
  'verbose_sync_process_cpu_user_seconds_total',
  'verbose_sync_nodejs_heap_size_used_bytes',
];

describe('/healthz, /readyz and /metrics of a running daemon', () => {
  let p: Pipeline;
  let daemon: Daemon;
  let ops: OpsServer;
  const logs: Record<string, unknown>[] = [];
  const metricsText = async () => (await get(`${ops.url}/metrics`)).body;

  beforeAll(async () => {
    p = await createPipeline('endpoints', MAPPINGS, SCHEMA);
    await p.db.query(
      `INSERT INTO people SELECT g, 'Person ' || g, '+1212555' || lpad(g::text, 4, '0') FROM generate_series(1, 300) g`,
    );
    const metrics = new Metrics();
    const log = loggerInto(logs);
    daemon = new Daemon(p.config(), { fullResync: false, dryRun: false, log, metrics });
    ops = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      health: () => daemon.health(),
      readiness: () => daemon.readiness(),
    });
  });
  afterAll(async () => {
    await daemon.stop();
    await ops.close();
    await p.close();
  });

  it('is alive but not ready before streaming, then ready once connected to both sides', async () => {
    expect((await get(`${ops.url}/healthz`)).status).toBe(200);
    const before = await get(`${ops.url}/readyz`);
    expect(before.status).toBe(503);
    expect(JSON.parse(before.body)).toMatchObject({ status: 'unavailable', stream: 'not connected' });

    await daemon.start();
    const after = await get(`${ops.url}/readyz`);
    expect(after.status).toBe(200);
    expect(JSON.parse(after.body)).toEqual({ status: 'ok', stream: 'connected', verbose: 'reachable' });
    expect((await get(`${ops.url}/healthz`)).status).toBe(200);
    expect((await get(`${ops.url}/nothing-here`)).status).toBe(404);
  });

  it('exposes every named metric, with the first-start resync and its deliveries counted', async () => {
    await eventually(() => p.simulator.store.size === 300, 20_000, 'the first-start resync');
    const text = await eventually(async () => {
      const scraped = await metricsText();
      return sample(scraped, 'verbose_sync_resync_running') === 0 &&
        sample(scraped, 'verbose_sync_replication_lag_bytes') !== undefined
        ? scraped
        : undefined;
    });
    const declared = families(text);
    expect(NAMED.filter((name) => !declared.has(name))).toEqual([]);
    const table = { table: 'public.people' };
    expect(sample(text, 'verbose_sync_resync_rows_done', table)).toBe(300);
    expect(sample(text, 'verbose_sync_resync_rows_estimated', table)).toBeGreaterThan(0);
    expect(sample(text, 'verbose_sync_contacts_sent_total')).toBe(300);
    expect(sample(text, 'verbose_sync_requests_total', { status: '200' })).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'verbose_sync_batch_size_sum')).toBe(300);
    expect(sample(text, 'verbose_sync_request_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'verbose_sync_replication_lag_bytes')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'verbose_sync_acknowledged_lsn')).toBeGreaterThan(0);
    expect(sample(text, 'verbose_sync_process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('counts live changes, deliveries and rejects as they happen', async () => {
    const before = await metricsText();
    const inserts = { table: 'public.people', op: 'insert' };
    const updates = { table: 'public.people', op: 'update' };
    await p.db.query(
      `INSERT INTO people VALUES (1001, 'Ada', '+12125551001'), (1002, 'Grace', '+12125551002')`,
    );
    await p.db.query(`UPDATE people SET name = 'Alan' WHERE id = 7`);
    await p.db.query(`INSERT INTO people VALUES (1003, 'Typo', '12')`);
    const after = await eventually(async () => {
      const scraped = await metricsText();
      return sample(scraped, 'verbose_sync_contacts_sent_total') === 303 &&
        sample(scraped, 'verbose_sync_rejects_total', { stage: 'mapping' }) === 1
        ? scraped
        : undefined;
    });
    expect(sample(after, 'verbose_sync_changes_received_total', inserts)).toBe(
      (sample(before, 'verbose_sync_changes_received_total', inserts) ?? 0) + 3,
    );
    expect(sample(after, 'verbose_sync_changes_received_total', updates)).toBe(
      (sample(before, 'verbose_sync_changes_received_total', updates) ?? 0) + 1,
    );
    expect(sample(after, 'verbose_sync_batch_size_count')).toBeGreaterThan(
      sample(before, 'verbose_sync_batch_size_count')!,
    );
    expect(sample(after, 'verbose_sync_coalescer_contacts')).toBe(0);
    expect(p.simulator.store.contact('+12125550007')?.first_name).toBe('Alan');
  });

  it('turns unready while Verbose drops connections, counts the retries, and recovers', async () => {
    p.simulator.setFaults({ dropRate: 1 });
    await p.db.query(`INSERT INTO people VALUES (2001, 'Hedy', '+12125552001')`);
    const unready = await eventually(async () => {
      const probe = await get(`${ops.url}/readyz`);
      return probe.status === 503 ? probe : undefined;
    });
    expect(JSON.parse(unready.body)).toMatchObject({
      status: 'unavailable',
      verbose: 'unreachable (network)',
    });
    const failing = await metricsText();
    expect(sample(failing, 'verbose_sync_retries_total')).toBeGreaterThan(0);
    expect(sample(failing, 'verbose_sync_requests_total', { status: 'network' })).toBeGreaterThan(0);
    expect(sample(failing, 'verbose_sync_coalescer_contacts')).toBe(1);
    // The checkpoint is stuck behind the undelivered contact, and its age says so at each scrape.
    const age = sample(failing, 'verbose_sync_checkpoint_age_seconds')!;
    await eventually(async () => sample(await metricsText(), 'verbose_sync_checkpoint_age_seconds')! > age);

    p.simulator.setFaults({ dropRate: 0 });
    await eventually(() => p.simulator.store.contact('+12125552001'), 40_000, 'the contact after the outage');
    await eventually(async () => (await get(`${ops.url}/readyz`)).status === 200);
    const recovered = await metricsText();
    expect(sample(recovered, 'verbose_sync_coalescer_contacts')).toBe(0);
    expect(sample(recovered, 'verbose_sync_checkpoint_age_seconds')).toBe(0);
    // One warning for the outage, however many attempts it took, and one line when it is over.
    expect(
      logs.filter((line) => line.msg === 'Verbose request failed; retrying' && line.level === 'warn'),
    ).toHaveLength(1);
    expect(logs.some((line) => line.msg === 'Verbose answers again')).toBe(true);
  });
});
