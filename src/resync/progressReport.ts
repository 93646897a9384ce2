import type { Logger } from '../log.js';
import type { Metrics } from '../ops/metrics.js';

export interface TextSink {
  write(text: string): unknown;
}

export interface ProgressReportOptions {
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** Draw a one-line bar here instead of logging lines: the daemon passes process.stderr when stdout is a terminal. */
  bar?: TextSink | undefined;
  /** How often a line is logged (or the bar redrawn); defaults to 10 s for lines, 1 s for the bar. */
  intervalMs?: number | undefined;
}

interface TableFigures {
  rowsDone: number;
  estimatedRows: number;
}

/** The figures people watch during a full resync: a log line (or a terminal bar) at a steady pace, and metrics. */
export class ResyncProgressReport {
  private readonly tables = new Map<string, TableFigures>();
  private current: string | undefined;
  private startedAt = 0;
  private rowsAtStart = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProgressReportOptions) {}

  begin(tables: Record<string, TableFigures>): void {
    this.tables.clear();
    for (const [table, figures] of Object.entries(tables)) {
      this.tables.set(table, { ...figures });
      this.publish(table);
    }
    this.startedAt = this.options.now();
    this.rowsAtStart = this.totalDone();
    this.options.metrics.resyncRunning.set(1);
    const interval = this.options.intervalMs ?? (this.options.bar ? 1_000 : 10_000);
    this.timer = setInterval(() => this.report(), interval);
    this.timer.unref();
  }

  /** Rows of `table` read so far (including those of earlier runs of this resync). */
  update(table: string, rowsDone: number): void {
    const figures = this.tables.get(table);
    if (!figures) return;
    figures.rowsDone = rowsDone;
    this.current = table;
    this.publish(table);
  }

  /** One line (or one redraw of the bar) with the current figures. */
  report(): void {
    const table = this.current ?? this.tables.keys().next().value;
    if (table === undefined) return;
    const figures = this.tables.get(table)!;
    const seconds = (this.options.now() - this.startedAt) / 1000;
    const rowsPerSecond = seconds > 0 ? (this.totalDone() - this.rowsAtStart) / seconds : 0;
    const rowsLeft = [...this.tables.values()].reduce(
      (sum, t) => sum + Math.max(0, t.estimatedRows - t.rowsDone),
      0,
    );
    const secondsLeft = rowsPerSecond > 0 ? Math.round(rowsLeft / rowsPerSecond) : null;
    const rate = Math.round(rowsPerSecond);
    const text =
      `${table} ${count(figures.rowsDone)} of ~${count(figures.estimatedRows)} rows, ` +
      `${count(rate)} rows/s, ${secondsLeft === null ? 'time left unknown' : `${duration(secondsLeft)} left`}`;
    if (this.options.bar) {
      this.options.bar.write(`\r\x1b[2K${bar(figures)} full resync: ${text}`);
    } else {
      this.options.log.info(
        {
          table,
          rowsDone: figures.rowsDone,
          estimatedRows: figures.estimatedRows,
          rowsPerSecond: rate,
          secondsLeft,
        },
        `full resync: ${text}`,
      );
    }
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.options.bar && this.current !== undefined) {
      this.report();
      this.options.bar.write('\n');
    }
    this.options.metrics.resyncRunning.set(0);
  }

  private publish(table: string): void {
    const figures = this.tables.get(table)!;
    this.options.metrics.resyncRowsDone.set({ table }, figures.rowsDone);
    this.options.metrics.resyncRowsTotal.set({ table }, figures.estimatedRows);
  }

  private totalDone(): number {
    return [...this.tables.values()].reduce((sum, t) => sum + t.rowsDone, 0);
  }
}

const BAR_WIDTH = 24;

function bar({ rowsDone, estimatedRows }: TableFigures): string {
  const share = estimatedRows > 0 ? Math.min(1, rowsDone / estimatedRows) : 1;
  const filled = Math.round(share * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${Math.floor(share * 100)}%`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}
