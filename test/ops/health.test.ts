import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon.js';
import { Metrics } from '../../src/ops/metrics.js';
import { loggerInto } from '../support/logLines.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

const SCHEMA = `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`;
const MAPPINGS = `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`;
const MINUTE = 60_000;

/** /healthz (liveness): a daemon is wedged when contacts wait 5 minutes and no request ends meanwhile. */
describe('liveness', () => {
  let p: Pipeline;
  let daemon: Daemon;
  let offset = 0;
  beforeAll(async () => {
    p = await createPipeline('health', MAPPINGS, SCHEMA);
    daemon = new Daemon(p.config(), {
      fullResync: false,
      dryRun: false,
      log: loggerInto(p.logs),
      metrics: new Metrics({ defaults: false }),
      // Minutes pass at once: the daemon's clock runs ahead of the wall clock by `offset`.
      now: () => Date.now() + offset,
    });
    await daemon.start();
  });
  afterAll(async () => {
    p.simulator.setFaults({});
    await daemon.stop();
    await p.close();
  });

  it('is alive for the first change after a quiet spell, and wedged once it has waited 5 minutes unanswered', async () => {
    expect(daemon.health().ok).toBe(true);
    offset += 60 * MINUTE; // an hour with no change and so no request
    p.simulator.setFaults({ latencyMs: 20_000 }); // the next request hangs (within request_timeout_ms)
    await p.db.query(`INSERT INTO people VALUES (1, 'Ann', '+12125550101')`);
    await eventually(() => daemon.health().detail.pending === 1, 10_000, 'the change waiting');
    expect(daemon.health().ok).toBe(true);

    offset += 6 * MINUTE;
    expect(daemon.health()).toEqual({
      ok: false,
      detail: { pending: 1, reason: 'contacts wait but no request has ended for 5 minutes' },
    });
  });
});
