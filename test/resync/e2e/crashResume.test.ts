import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonProcess } from '../../support/daemonProcess.js';
import { eventually } from '../../support/pipeline.js';
import { insertPeople, PEOPLE_MAPPINGS, PEOPLE_SCHEMA } from './people.js';
import { createResyncPipeline, type ResyncPipeline } from './resyncPipeline.js';

const ROWS = 30_000;
const CHUNK = 1_000;
/** Slow enough to be killed three times on the way, fast enough to finish in a few seconds. */
const SETTINGS = { chunkSize: CHUNK, batchSize: 250, requestsPerSecond: 20, concurrency: 2 };

type Line = Record<string, unknown>;

const chunkStart = (line: Line): number | null => {
  const after = line.after as { id?: string } | null | undefined;
  return after?.id === undefined ? null : Number(after.id);
};
const isChunkRead = (line: Line) => line.msg === 'full resync: reading chunk';

describe('a full resync killed with SIGKILL', () => {
  let p: ResyncPipeline;
  beforeAll(async () => {
    p = await createResyncPipeline('resync_crash', PEOPLE_MAPPINGS, PEOPLE_SCHEMA);
    await p.db.query(insertPeople(ROWS));
  });
  afterAll(() => p.close());

  /** The key of the last row of the last delivered chunk, from the progress file. */
  async function lastDeliveredKey(): Promise<number | null> {
    const text = await readFile(join(p.stateDir, 'resync.json'), 'utf8').catch(() => undefined);
    if (text === undefined) return null;
    const progress = JSON.parse(text) as { tables: Record<string, { lastKey: { id: string } | null }> };
    const lastKey = progress.tables['public.people']?.lastKey;
    return lastKey ? Number(lastKey.id) : null;
  }

  /** Runs until the progress file says rows up to `threshold` were delivered, then kills the process. */
  async function killPast(daemon: DaemonProcess, threshold: number): Promise<void> {
    await eventually(
      async () => ((await lastDeliveredKey()) ?? 0) >= threshold,
      30_000,
      `chunks up to ${threshold} to be delivered`,
    );
    daemon.kill('SIGKILL');
    expect((await daemon.exited).signal).toBe('SIGKILL');
  }

  it('continues after its last delivered chunk on each restart, never reading a finished chunk again', async () => {
    const runs: DaemonProcess[] = [await p.spawn(SETTINGS, ['--full-resync'])];
    const resumedFrom: (number | null)[] = [];

    // Early, in the middle, and late.
    for (const threshold of [3_000, 14_000, 24_000]) {
      const running = runs.at(-1)!;
      if (threshold === 14_000) {
        // Operators follow it on /metrics too.
        const started = await running.waitForLog(/^verbose-sync starting$/);
        await running.waitForLog(isChunkRead);
        const metrics = await (await fetch(`${String(started.ops)}/metrics`)).text();
        expect(metrics).toMatch(/^verbose_sync_resync_running 1$/m);
        expect(metrics).toMatch(/^verbose_sync_resync_rows_estimated\{table="public.people"\} 30000$/m);
        expect(metrics).toMatch(/^verbose_sync_resync_rows_done\{table="public.people"\} \d+$/m);
      }
      await killPast(running, threshold);
      resumedFrom.push(await lastDeliveredKey());
      // No --full-resync: the unfinished resync is in the state directory and continues by itself.
      runs.push(await p.spawn(SETTINGS));
    }
    const last = runs.at(-1)!;
    await last.waitForLog(/^full resync finished$/, 40_000);
    await p.caughtUp();

    // Progress was made before each kill, and each restart read on from exactly there.
    expect(resumedFrom.every((key) => key !== null)).toBe(true);
    expect([...resumedFrom].sort((a, b) => a! - b!)).toEqual(resumedFrom);
    runs.slice(1).forEach((run, i) => {
      expect(
        run.logs.some((l) => l.msg === 'continuing the unfinished full resync from its last delivered chunk'),
      ).toBe(true);
      const starts = run.logs.filter(isChunkRead).map(chunkStart);
      expect(starts[0]).toBe(resumedFrom[i]);
      expect(starts.every((start) => start !== null && start >= resumedFrom[i]!)).toBe(true);
    });

    // Over the four runs, at most the few chunks read but not yet delivered at each kill were read twice.
    const reads = runs.flatMap((run) => run.logs.filter(isChunkRead).map(chunkStart));
    expect(new Set(reads).size).toBe(ROWS / CHUNK);
    expect(reads.length - ROWS / CHUNK).toBeLessThanOrEqual(3 * 5);

    const expected = await p.expectedContacts('public.people', ['id']);
    expect(expected.size).toBe(ROWS);
    expect(p.mismatches(expected).slice(0, 5)).toEqual([]);
    await expect(readFile(join(p.stateDir, 'resync.json'))).rejects.toThrow(/ENOENT/);
    last.kill('SIGTERM');
    expect((await last.exited).code).toBe(0);
  });
});
