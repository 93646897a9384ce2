import cron from 'node-cron';
import type { Logger } from '../log.js';

/** A started timer that calls back on its schedule. */
export interface ScheduledTimer {
  stop(): void | Promise<void>;
}

/** Calls `tick` on the cron `expression`; node-cron by default, a manual trigger in tests. */
export type Scheduler = (expression: string, tick: () => void) => ScheduledTimer;

export interface ResyncScheduleOptions {
  /** `resync.schedule`, cron syntax, already validated by the config schema. */
  expression: string;
  /** Begins a full resync (`backfill.start('scheduled')`); resolves once it has begun. */
  startResync: () => Promise<void>;
  /** A resync is running, scheduled or not (`backfill.running`): then a tick is skipped. */
  isRunning: () => boolean;
  log: Logger;
  scheduler?: Scheduler | undefined;
}

/** Periodic full resyncs (`resync.schedule`); a tick while one is still running is skipped, never queued. */
export class ResyncSchedule {
  private timer: ScheduledTimer | undefined;
  private starting: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: ResyncScheduleOptions) {}

  start(): void {
    if (this.timer || this.stopped) return;
    const scheduler = this.options.scheduler ?? nodeCronScheduler;
    this.timer = scheduler(this.options.expression, () => this.tick());
    this.options.log.info({ schedule: this.options.expression }, 'full resync scheduled');
  }

  /** Safe to call twice; waits for a resync that is being started to have begun. */
  async stop(): Promise<void> {
    this.stopped = true;
    const timer = this.timer;
    this.timer = undefined;
    await timer?.stop();
    await this.starting;
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.starting || this.options.isRunning()) {
      this.options.log.info(
        { schedule: this.options.expression },
        'scheduled full resync skipped: a full resync is still running',
      );
      return;
    }
    this.starting = this.options
      .startResync()
      .catch((error: unknown) => {
        this.options.log.error({ err: error }, 'scheduled full resync could not start');
      })
      .finally(() => {
        this.starting = undefined;
      });
  }
}

const nodeCronScheduler: Scheduler = (expression, tick) => {
  const task = cron.schedule(expression, tick, { name: 'verbose-sync full resync' });
  return { stop: () => task.destroy() };
};
