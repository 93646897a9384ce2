import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { seededRandom } from '../../support/seededRandom.js';
import { ConcurrentWriter } from './concurrentWriter.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const ROWS = 200_000;

describe('a full resync while the CRM keeps writing', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_concurrent', PEOPLE_MAPPINGS, PEOPLE_SCHEMA);
    await p.db.query(insertPeople(ROWS));
    await p.db.query('ANALYZE people');
  });
  afterAll(() => p.close());

  it(`loads ${ROWS.toLocaleString('en-US')} rows and ends with every contact at its newest state`, async () => {
    const seed = Number(process.env.RESYNC_SEED ?? Date.now() % 1_000_000);
    console.log(`concurrent writer seed: ${seed} (replay with RESYNC_SEED=${seed})`);
    const { daemon, logs, metrics } = await p.start(
      { chunkSize: 10_000, batchSize: 1_000, requestsPerSecond: 1_000, concurrency: 4 },
      { fullResync: true, progressIntervalMs: 500 },
    );
    const readingAfter = () => {
      const chunk = logs.findLast((l) => l.msg === 'full resync: reading chunk');
      return Number((chunk?.after as { id?: string } | null | undefined)?.id ?? 0);
    };
    const writer = new ConcurrentWriter(p.db.url, seededRandom(seed), ROWS, readingAfter);
    await writer.start();
    try {
      await eventually(
        () => logs.some((l) => l.msg === 'full resync finished'),
        50_000,
        'the resync to finish',
      );
    } finally {
      const tally = await writer.stop();
      console.log('concurrent writes during the resync', tally);
    }
    expect(daemon.resyncRunning).toBe(false);
    await p.caughtUp();
    await daemon.idle();

    const expected = await p.expectedContacts('public.people', ['id']);
    expect(expected.size).toBeGreaterThan(ROWS * 0.9);
    expect(p.mismatches(expected).slice(0, 5)).toEqual([]);

    // People following the resync saw its progress, in lines and in the metrics.
    const progress = logs.filter((l) => String(l.msg).startsWith('full resync: public.people '));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({
      table: 'public.people',
      rowsDone: expect.any(Number),
      estimatedRows: ROWS,
      rowsPerSecond: expect.any(Number),
      msg: expect.stringMatching(/ of ~200,000 rows, [\d,]+ rows\/s, /),
    });
    const done = (await metrics.resyncRowsDone.get()).values;
    expect(done).toEqual([{ value: expect.any(Number), labels: { table: 'public.people' } }]);
    expect(done[0]!.value).toBeGreaterThanOrEqual(ROWS * 0.9);
    expect((await metrics.resyncRowsTotal.get()).values[0]?.value).toBe(ROWS);
    expect((await metrics.resyncRunning.get()).values[0]?.value).toBe(0);
  });
});
