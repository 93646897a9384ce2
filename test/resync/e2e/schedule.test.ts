import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const ROWS = 1_000;
/** Every second (node-cron's seconds field), against a resync that takes longer than that. */
const SETTINGS = {
  chunkSize: 200,
  batchSize: 100,
  requestsPerSecond: 6,
  concurrency: 1,
  schedule: '* * * * * *',
};

describe('resync.schedule', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_schedule', PEOPLE_MAPPINGS, PEOPLE_SCHEMA);
    await p.db.query(insertPeople(ROWS));
  });
  afterAll(() => p.close());

  it('runs the full resync again on its schedule, skipping ticks while one is running', async () => {
    const { daemon, logs } = await p.start(SETTINGS);
    const resyncEvents = () =>
      logs.filter((l) => l.msg === 'full resync running' || l.msg === 'full resync finished');
    await eventually(
      () => resyncEvents().filter((l) => l.msg === 'full resync finished' && l.rows === ROWS).length >= 2,
      30_000,
      'a scheduled resync after the first one',
    );
    await daemon.stop();

    const events = resyncEvents().map((l) => (l.msg === 'full resync running' ? l.reason : 'finished'));
    expect(events.slice(0, 4)).toEqual(['first start', 'finished', 'scheduled', 'finished']);
    // Never two at once: each one finished before the next began.
    expect(events.filter((event, i) => (event === 'finished') !== (i % 2 === 1))).toEqual([]);
    expect(logs.some((l) => l.msg === 'scheduled full resync skipped: a full resync is still running')).toBe(
      true,
    );
    // The scheduled one sent every contact again.
    expect(p.simulator.store.contact('+12125200001')?.writes).toBeGreaterThanOrEqual(2);
  });
});
