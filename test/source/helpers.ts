import pg from 'pg';
import { pino } from 'pino';
import type { Lsn, RowChange } from '../../src/domain.js';
import type { Logger } from '../../src/log.js';
import { parseLsn } from '../../src/lsn.js';
import { Metrics } from '../../src/ops/metrics.js';
import {
  ChangeStream,
  type ChangeStreamOptions,
  type LogicalMessage,
} from '../../src/source/changeStream.js';
import { prepareSource } from '../../src/source/setup.js';
import { parsedLinesInto } from '../support/logLines.js';
import { eventually } from '../support/pipeline.js';

/** `eventually` at this suite's pace: 30 s unless told, polled every 25 ms. */
export function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 30_000, intervalMs = 25, what = 'condition' } = {},
) {
  return eventually(check, timeoutMs, what, intervalMs);
}

/** A logger whose lines are kept for assertions. */
export function memoryLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: pino({ level: 'debug' }, parsedLinesInto(lines)), lines };
}

/**
 * A ChangeHandler that behaves like the pipeline downstream: changes of a transaction are kept aside until
 * its commit, dropped on rollback. `acknowledged()` returns the last commit unless `ackMode` says otherwise.
 */
export class Collector {
  committed: RowChange[] = [];
  pending: RowChange[] = [];
  commits: Lsn[] = [];
  messages: LogicalMessage[] = [];
  rollbacks = 0;
  /** Broken ordering promises: changes closed by another transaction's commit, commits going backwards. */
  violations: string[] = [];
  /** What acknowledged() returns: the last commit seen, or a fixed value. */
  ack: 'last' | Lsn = 'last';
  /** While set, change() waits for it. */
  gate: Promise<void> | undefined;
  blocked = 0;

  /** Called before each change is recorded (to block at a chosen point). */
  beforeChange: ((change: RowChange) => Promise<void> | void) | undefined;

  readonly handler = {
    change: async (change: RowChange) => {
      await this.beforeChange?.(change);
      if (this.gate) {
        this.blocked++;
        await this.gate;
      }
      this.pending.push(change);
    },
    commit: (lsn: Lsn) => {
      for (const change of this.pending) {
        if (change.commitLsn !== lsn)
          this.violations.push(`change of ${change.commitLsn} closed by commit ${lsn}`);
      }
      const last = this.commits.at(-1);
      if (last !== undefined && lsn <= last) this.violations.push(`commit ${lsn} after commit ${last}`);
      for (const change of this.pending) this.committed.push(change);
      this.pending = [];
      this.commits.push(lsn);
    },
    message: (message: LogicalMessage) => {
      this.messages.push(message);
    },
    rollback: () => {
      this.rollbacks++;
      this.pending = [];
    },
  };

  acknowledged = (): Lsn => {
    if (this.ack !== 'last') return this.ack;
    return this.commits.at(-1) ?? 0n;
  };

  rows(table: string): RowChange[] {
    return this.committed.filter((c) => c.table === table);
  }

  /** Blocks change() until the returned function is called. */
  block(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      this.gate = undefined;
      release();
    };
  }
}

export interface StreamFixture {
  stream: ChangeStream;
  collector: Collector;
  metrics: Metrics;
  lines: Record<string, unknown>[];
}

/** Prepares slot + publication for `tables` and builds a stream (not started) with short intervals. */
export async function streamFor(
  url: string,
  name: string,
  tables: string[],
  overrides: Partial<ChangeStreamOptions> & { collector?: Collector } = {},
): Promise<StreamFixture & { report: Awaited<ReturnType<typeof prepareSource>> }> {
  const report = await prepareSource({ url, slot: name, publication: name, tables });
  const collector = overrides.collector ?? new Collector();
  const metrics = new Metrics({ defaults: false });
  const { log, lines } = memoryLogger();
  const stream = new ChangeStream({
    url,
    slot: name,
    publication: name,
    statusIntervalMs: 200,
    heartbeatIntervalMs: 0,
    handler: collector.handler,
    acknowledged: collector.acknowledged,
    log,
    metrics,
    reconnect: { minMs: 100, maxMs: 1_000 },
    standbyRetryMs: 200,
    keyColumns: report.keyColumns,
    ...overrides,
  });
  return { stream, collector, metrics, lines, report };
}

export async function slotRow(
  sql: pg.ClientBase,
  slot: string,
): Promise<{ confirmed: Lsn; activePid: number | null } | undefined> {
  const { rows } = await sql.query<{ confirmed: string; active_pid: number | null }>(
    'SELECT confirmed_flush_lsn::text AS confirmed, active_pid FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = rows[0];
  return row ? { confirmed: parseLsn(row.confirmed), activePid: row.active_pid } : undefined;
}

export async function counterValue(metrics: Metrics, name: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

export { pg };
