import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const ROWS = 3_000;
/** Fifteen chunks: far more than the few a resync reads ahead of delivery. */
const SETTINGS = { chunkSize: 200, batchSize: 500, requestsPerSecond: 100 };

describe('--full-resync --dry-run', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_dry_run', PEOPLE_MAPPINGS, PEOPLE_SCHEMA);
    await p.db.query(insertPeople(ROWS));
  });
  afterAll(() => p.close());

  it('prints every row it would send, sends none, and leaves no resync to continue', async () => {
    const printed = new Set<string>();
    const { daemon, logs } = await p.start(SETTINGS, {
      fullResync: true,
      dryRun: ({ contacts }) => {
        for (const contact of contacts) printed.add(contact.phone);
      },
    });
    await eventually(() => logs.some((l) => l.msg === 'full resync finished'), 20_000, 'the dry-run resync');
    // Its last chunk is still being printed when the resync says it finished: nothing waits for Verbose.
    await eventually(() => printed.size === ROWS, 10_000, 'every row printed');
    await daemon.stop();

    expect(printed.has('+12125203000')).toBe(true);
    expect(p.simulator.requests.entries().filter((r) => r.method === 'POST')).toEqual([]);
    expect(await readdir(p.stateDir)).not.toContain('resync.json');
  });
});
