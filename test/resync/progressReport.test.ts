import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { ResyncProgressReport } from '../../src/resync/progressReport.js';

function setup(bar?: string[], intervalMs?: number) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
  let now = 1_000_000;
  const metrics = new Metrics({ defaults: false });
  const report = new ResyncProgressReport({
    log,
    metrics,
    now: () => now,
    bar: bar ? { write: (text: string) => bar.push(text) } : undefined,
    intervalMs,
  });
  return { report, lines, metrics, advance: (ms: number) => (now += ms) };
}

describe('ResyncProgressReport', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs a line at its interval while the resync runs, and none after it ended', () => {
    vi.useFakeTimers();
    const { report, lines, advance } = setup(undefined, 5_000);
    const progress = () => lines.filter((l) => String(l.msg).startsWith('full resync: public.people'));
    report.begin({ 'public.people': { rowsDone: 0, estimatedRows: 9_000 } });
    for (const done of [1_000, 2_000, 3_000]) {
      advance(5_000);
      report.update('public.people', done);
      vi.advanceTimersByTime(5_000);
    }
    expect(progress().map((l) => l.rowsDone)).toEqual([1_000, 2_000, 3_000]);
    expect(progress().at(-1)?.msg).toBe(
      'full resync: public.people 3,000 of ~9,000 rows, 200 rows/s, 30s left',
    );
    report.end();
    vi.advanceTimersByTime(60_000);
    expect(progress()).toHaveLength(3);
  });

  it('logs the table, rows done of the estimate, rows per second and the time left', async () => {
    const { report, lines, metrics, advance } = setup();
    report.begin({
      'public.people': { rowsDone: 1_000, estimatedRows: 20_000 },
      'public.leads': { rowsDone: 0, estimatedRows: 5_000 },
    });
    expect((await metrics.resyncRunning.get()).values[0]?.value).toBe(1);
    advance(10_000);
    report.update('public.people', 6_000);
    report.report();
    expect(lines.at(-1)).toMatchObject({
      table: 'public.people',
      rowsDone: 6_000,
      estimatedRows: 20_000,
      rowsPerSecond: 500,
      secondsLeft: 38, // (14,000 + 5,000) rows left at 500 rows/s
      msg: 'full resync: public.people 6,000 of ~20,000 rows, 500 rows/s, 38s left',
    });
    expect((await metrics.resyncRowsDone.get()).values).toContainEqual({
      value: 6_000,
      labels: { table: 'public.people' },
    });
    expect((await metrics.resyncRowsTotal.get()).values).toContainEqual({
      value: 5_000,
      labels: { table: 'public.leads' },
    });
    report.end();
    expect((await metrics.resyncRunning.get()).values[0]?.value).toBe(0);
  });

  it('draws one rewritten line on a terminal instead of logging', () => {
    const bar: string[] = [];
    const { report, lines, advance } = setup(bar);
    report.begin({ 'public.people': { rowsDone: 0, estimatedRows: 1_000 } });
    advance(2_000);
    report.update('public.people', 500);
    report.report();
    report.end();
    expect(lines.filter((l) => String(l.msg).startsWith('full resync:'))).toEqual([]);
    expect(bar[0]).toBe(
      '\r\x1b[2K[############............] 50% full resync: public.people 500 of ~1,000 rows, 250 rows/s, 2s left',
    );
    expect(bar.at(-1)).toBe('\n');
  });
});
