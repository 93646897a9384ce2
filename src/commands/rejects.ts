import pg from 'pg';
import type { LoadedConfig } from '../config/load.js';
import { systemNow, systemSleep } from '../delivery/clock.js';
import { buildDeliveryStage } from '../delivery/deliveryStage.js';
import { RejectLog, type RejectRecord, rejectedRows } from '../delivery/rejectLog.js';
import { createLogger, scrubber } from '../log.js';
import { Mapper } from '../mapping/mapper.js';
import { Metrics } from '../ops/metrics.js';
import { KeysetReader, type TableShape } from '../resync/keysetReader.js';
import { SESSION_OPTIONS } from '../source/changeStream.js';

/**
 * `verbose-sync rejects`: lists the contacts set aside as unsendable. With `--retry`: reads each rejected row
 * again from the database as it is now, maps it with the current config and sends what is now valid; what
 * still fails is recorded again with its current reason, and rows that no longer exist are dropped.
 */
export async function runRejects(loaded: LoadedConfig, options: { retry: boolean }): Promise<number> {
  const scrub = scrubber(loaded.secrets);
  const say = (line: string) => process.stdout.write(`${scrub(line)}\n`);
  const log = new RejectLog({ stateDir: loaded.config.state_dir, now: systemNow });
  // The retry holds its lock from before it reads the file: see RejectLog.whileRetrying.
  return options.retry ? log.whileRetrying(() => list(log, say, loaded)) : list(log, say);
}

/** Lists the rejected rows; with `retrying`, sends them again instead. */
async function list(log: RejectLog, say: (line: string) => void, retrying?: LoadedConfig): Promise<number> {
  const records = await log.list();
  if (records.length === 0) {
    say(`no rejected contacts in ${log.file}`);
    return 0;
  }
  const rows = rejectedRows(records);
  if (!retrying) {
    for (const { latest, lines } of rows)
      say(describe(latest) + (lines > 1 ? `  (recorded ${lines} times)` : ''));
    say(
      `${rows.length} rejected contact(s) in ${log.file}; fix the rows (or the mapping), then run: verbose-sync rejects --retry`,
    );
    return 0;
  }
  const outcome = await retry(
    retrying,
    rows.map((row) => row.latest),
    records,
  );
  say(
    `retried ${rows.length}: ${outcome.resent} contact(s) sent, ${outcome.stillRejected} still rejected ` +
      `(listed again with today's reason), ${outcome.gone} row(s) no longer in the database (dropped)`,
  );
  return 0;
}

function describe(record: RejectRecord): string {
  const key = Object.entries(record.key)
    .map(([column, value]) => `${column}=${JSON.stringify(value)}`)
    .join(',');
  return `${record.time}  ${record.stage.padEnd(7)}  ${record.table} ${key}  phone ${JSON.stringify(record.phone)}  ${record.reason}`;
}

interface RetryOutcome {
  resent: number;
  stillRejected: number;
  gone: number;
}

/** Reads each row of `rows` again and sends it; then removes the lines of `retried`, and only those. */
async function retry(
  loaded: LoadedConfig,
  rows: RejectRecord[],
  retried: RejectRecord[],
): Promise<RetryOutcome> {
  const { config } = loaded;
  const logger = createLogger({ secrets: loaded.secrets, level: process.env.LOG_LEVEL ?? 'warn' });
  const mapper = Mapper.fromConfig(config);
  let fatal: Error | undefined;
  const metrics = new Metrics({ defaults: false });
  const stage = buildDeliveryStage({
    config,
    start: 0n,
    log: logger,
    metrics,
    now: systemNow,
    sleep: systemSleep,
    onFatal: (error) => {
      fatal = error;
    },
  });
  const pool = new pg.Pool({ connectionString: config.source.url, max: 1, options: SESSION_OPTIONS });
  const reader = new KeysetReader(pool);
  const shapes = new Map<string, TableShape>();
  const outcome: RetryOutcome = { resent: 0, stillRejected: 0, gone: 0 };
  // One position for the whole retry: the checkpoint only needs to see it closed once everything is added.
  const position = 1n;
  stage.delivery.start();
  try {
    for (const record of rows) {
      const keyColumns = Object.keys(record.key);
      const shape =
        shapes.get(record.table) ??
        (await reader.describe(record.table, keyColumns, mapper.columnsOf(record.table)));
      shapes.set(record.table, shape);
      const change = await reader.readByKey(shape, record.key);
      if (!change) {
        outcome.gone += 1;
        continue;
      }
      for (const mapped of mapper.map({ ...change, commitLsn: position })) {
        if (mapped.kind === 'contact') {
          await stage.coalescer.whenRoom();
          stage.coalescer.add(mapped.contact);
          outcome.resent += 1;
        } else if (mapped.kind === 'rejected') {
          await stage.rejects.append(mapped.rejection, 'mapping');
          outcome.stillRejected += 1;
        }
      }
    }
    stage.checkpoint.committed(position);
    await Promise.race([stage.delivery.flush(), stage.delivery.fatal]);
    if (fatal) throw fatal;
    const refused = (await metrics.rejects.get()).values.find((v) => v.labels.stage === 'api')?.value ?? 0;
    outcome.resent -= refused;
    outcome.stillRejected += refused;
    // The old lines go only once their rows were sent or recorded again, so a crash loses no reject.
    const lines = new Set(retried.map((record) => JSON.stringify(record)));
    await stage.rejects.remove((record) => lines.has(JSON.stringify(record)));
    return outcome;
  } finally {
    await stage.delivery.stop({ deadlineMs: config.shutdown_timeout_ms });
    await stage.client.close();
    await pool.end();
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
  }
}
