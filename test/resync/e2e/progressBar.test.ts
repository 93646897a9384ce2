import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventually } from '../../support/pipeline.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const ROWS = 2_000;
const SETTINGS = { chunkSize: 250, batchSize: 250, requestsPerSecond: 8, concurrency: 1 };

describe('full resync progress on a terminal', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_bar', PEOPLE_MAPPINGS, PEOPLE_SCHEMA);
    await p.db.query(insertPeople(ROWS));
  });
  afterAll(() => p.close());

  it('is a bar redrawn on stderr instead of log lines when stdout is a terminal', async () => {
    const drawn: string[] = [];
    const wasTty = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
    Object.defineProperty(process.stdout, 'isTTY', { value: true, configurable: true });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((text) => {
      drawn.push(String(text));
      return true;
    });
    try {
      const { daemon, logs } = await p.start(SETTINGS, { fullResync: true, progressIntervalMs: 200 });
      await eventually(() => logs.some((l) => l.msg === 'full resync finished'), 20_000, 'the resync');
      await daemon.stop();
      expect(logs.filter((l) => String(l.msg).startsWith('full resync: public.people '))).toEqual([]);
    } finally {
      stderr.mockRestore();
      if (wasTty) Object.defineProperty(process.stdout, 'isTTY', wasTty);
      else delete (process.stdout as { isTTY?: boolean }).isTTY;
    }
    // Each redraw returns to the start of the line and clears it.
    const redraw = '\r\x1b[2K';
    const bars = drawn
      .filter((text) => text.startsWith(`${redraw}[`))
      .map((text) => text.slice(redraw.length));
    expect(bars.length).toBeGreaterThan(1);
    expect(bars.at(-1)).toMatch(
      /^\[#{24}\] 100% full resync: public\.people 2,000 of ~2,000 rows, [\d,]+ rows\/s, 0s left$/,
    );
    expect(drawn.at(-1)).toBe('\n');
  });
});
