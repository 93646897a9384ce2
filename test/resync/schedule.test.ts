import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { ResyncSchedule, type Scheduler } from '../../src/resync/schedule.js';

function setup(isRunning: () => boolean, startResync: () => Promise<void>) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
  const ticks: (() => void)[] = [];
  let stopped = 0;
  const scheduler: Scheduler = (_expression, tick) => {
    ticks.push(tick);
    return { stop: () => void stopped++ };
  };
  const schedule = new ResyncSchedule({ expression: '0 3 * * 0', startResync, isRunning, log, scheduler });
  return { schedule, lines, tick: () => ticks[0]!(), ticks, stopped: () => stopped };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('ResyncSchedule', () => {
  it('starts a resync on each tick, and skips a tick while one is running', async () => {
    let running = false;
    let starts = 0;
    const { schedule, lines, tick } = setup(
      () => running,
      async () => {
        starts++;
      },
    );
    schedule.start();
    expect(lines.some((l) => l.msg === 'full resync scheduled')).toBe(true);
    tick();
    await settled();
    expect(starts).toBe(1);

    running = true;
    tick();
    await settled();
    expect(starts).toBe(1);
    expect(lines.some((l) => l.msg === 'scheduled full resync skipped: a full resync is still running')).toBe(
      true,
    );

    running = false;
    tick();
    await settled();
    expect(starts).toBe(2);
    await schedule.stop();
  });

  it('never overlaps a start that has not yet begun, logs a failed start, and stops twice safely', async () => {
    let release: () => void = () => {};
    let starts = 0;
    const { schedule, lines, tick, ticks, stopped } = setup(
      () => false,
      () => {
        starts++;
        return new Promise<void>((_, reject) => {
          release = () => reject(new Error('no database'));
        });
      },
    );
    schedule.start();
    schedule.start();
    expect(ticks).toHaveLength(1);
    tick();
    tick();
    expect(starts).toBe(1);
    const stopping = Promise.all([schedule.stop(), schedule.stop()]);
    release();
    await stopping;
    expect(stopped()).toBe(1);
    expect(lines.some((l) => l.msg === 'scheduled full resync could not start')).toBe(true);
    tick();
    expect(starts).toBe(1);
  });

  it('runs on node-cron by default', async () => {
    let starts = 0;
    const lines: Record<string, unknown>[] = [];
    const schedule = new ResyncSchedule({
      expression: '* * * * * *', // every second
      startResync: async () => void starts++,
      isRunning: () => false,
      log: createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } }),
    });
    schedule.start();
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    await schedule.stop();
    expect(starts).toBeGreaterThanOrEqual(1);
    const after = starts;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(starts).toBe(after);
  });
});
