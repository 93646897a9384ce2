import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const ROWS = 5_000;
/** A budget of 5 requests of 50 contacts a second: the resync alone needs 20 s of it. */
const SETTINGS = { chunkSize: 500, batchSize: 50, requestsPerSecond: 5, concurrency: 1 };

describe('live changes during a throttled full resync', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_live', PEOPLE_MAPPINGS, PEOPLE_SCHEMA);
    await p.db.query(insertPeople(ROWS));
  });
  afterAll(() => p.close());

  it('go out within the next request or two, ahead of the chunks waiting for the rate budget', async () => {
    const { daemon, metrics } = await p.start(SETTINGS, { fullResync: true });
    // The resync has filled the coalescer ahead of the budget.
    await eventually(() => p.simulator.store.size >= 100, 20_000, 'the resync to be sending');

    const requestsBefore = p.simulator.requests.count();
    await p.db.query(`BEGIN;
      UPDATE people SET name = 'Live Rename' WHERE id = 4990;
      INSERT INTO people (id, name, mobile) VALUES (9999, 'Live Newcomer', '+12139999999');
      COMMIT`);
    await eventually(
      () =>
        p.simulator.store.contact('+12125204990')?.first_name === 'Live' &&
        p.simulator.store.contact('+12139999999')?.first_name === 'Live',
      20_000,
      'the live changes',
    );

    // Not after the contacts queued before them (up to four chunks): at most the request in flight and the one whose
    // turn had come went first.
    expect(p.simulator.requests.count() - requestsBefore).toBeLessThanOrEqual(3);
    expect(daemon.resyncRunning).toBe(true);
    expect((await metrics.resyncRunning.get()).values[0]?.value).toBe(1);
    expect(p.simulator.store.size).toBeLessThan(ROWS / 2);
    await daemon.stop();
  });
});
