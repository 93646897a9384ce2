import pg from 'pg';
import { rssTarget, type Scenario } from '../scenario.js';
import { AcceptingSimulator } from '../support/acceptances.js';
import { BenchDatabase, phoneOf } from '../support/benchDatabase.js';
import { DaemonProcess, UNTHROTTLED } from '../support/daemonProcess.js';
import { within } from '../support/deliveryRun.js';
import { runNaivePeer, runPeer } from '../support/peerProcess.js';
import { quantile } from '../support/stats.js';

interface WriterRun {
  rows: number;
  perSecond: number;
}

/**
 * One connection inserting single-row transactions back to back for `durationMs`, each row carrying in
 * `first_name` the time its INSERT was sent, so that whoever receives it can tell its commit-to-here latency
 * (taken before the commit, so latencies are over- rather than under-stated by the commit's round trip).
 */
async function writeLive(url: string, firstId: number, durationMs: number): Promise<WriterRun> {
  const sql = new pg.Client(url);
  await sql.connect();
  try {
    const started = Date.now();
    let id = firstId;
    while (Date.now() - started < durationMs) {
      const sentAt = Date.now();
      await sql.query(
        'INSERT INTO contacts (id, phone, first_name, last_name, source) VALUES ($1, $2, $3, $4, $5)',
        [id, phoneOf(id), String(sentAt), 'Live', 'crm'],
      );
      id += 1;
    }
    const rows = id - firstId;
    return { rows, perSecond: rows / ((Date.now() - started) / 1000) };
  } finally {
    await sql.end();
  }
}

export const liveWriter: Scenario = {
  name: 'live',
  title: 'Live writer at full speed',
  async run(context) {
    const durationMs = context.quick ? 3_000 : 10_000;
    const settings = UNTHROTTLED;
    const database = await BenchDatabase.create(context.postgres, 'bench_live');
    try {
      // Each consumer gets its own writer run, its slot made just before it, so none is handed another's rows.
      context.say('no-op consumer');
      await database.createSlots('ceiling');
      let writer: Promise<WriterRun> | undefined;
      const ceiling = await runPeer(
        {
          kind: 'noop',
          databaseUrl: database.url,
          slot: 'ceiling',
          expect: Number.MAX_SAFE_INTEGER,
          timeLimitMs: durationMs + 2_000,
          latency: true,
        },
        () => {
          writer = writeLive(database.url, 1, durationMs);
          // Awaited below, once the peer is done; until then a failure must not count as unhandled.
          writer.catch(() => {});
        },
      );
      const ceilingWriter = await writer!;
      await database.sql.query(`SELECT pg_drop_replication_slot('ceiling')`);

      context.say('verbose-sync');
      await database.createSlots('daemon');
      const simulator = await AcceptingSimulator.start({ latencyFromFirstName: true });
      let daemonWriter: WriterRun;
      let daemonPeak: number;
      let daemonLive = 0;
      try {
        const daemon = await DaemonProcess.start(context.workDir, 'live', {
          ...settings,
          databaseUrl: database.url,
          slot: 'daemon',
          verboseUrl: simulator.url,
        });
        try {
          daemonWriter = await writeLive(database.url, 1_000_000, durationMs);
          await within(simulator.whenPhones(daemonWriter.rows), 60_000, () => {
            return `live: ${simulator.phones} of ${daemonWriter.rows} rows delivered`;
          });
        } finally {
          daemonPeak = await daemon.stop();
          daemonLive = daemon.maxLiveMb;
        }
      } finally {
        await simulator.close();
      }
      await database.sql.query(`SELECT pg_drop_replication_slot('daemon')`);

      context.say('naive peer');
      await database.createSlots('naive');
      let naiveWritten: Promise<WriterRun> | undefined;
      const naive = await runNaivePeer(
        {
          kind: 'naive',
          databaseUrl: database.url,
          slot: 'naive',
          expect: Number.MAX_SAFE_INTEGER,
          timeLimitMs: durationMs + 5_000,
        },
        { latencyFromFirstName: true },
        () => {
          naiveWritten = writeLive(database.url, 2_000_000, durationMs);
          naiveWritten.catch(() => {});
        },
      );
      const naiveSimulator = naive.simulator;
      const naiveWriter = await naiveWritten!;

      const flush = settings.flushIntervalMs;
      const daemonLatency = simulator.latenciesMs;
      const p50 = quantile(daemonLatency, 0.5);
      const p99 = quantile(daemonLatency, 0.99);
      return {
        setup:
          `One connection inserting single-row transactions back to back for ${durationMs / 1000} s, once per ` +
          'consumer (each on its own slot, made just before its run). Each row carries the time its INSERT was ' +
          'sent; latency runs from then to the moment the simulator accepted the contact (verbose-sync, naive ' +
          `peer) or the no-op consumer received the change. verbose-sync: batch_size ${settings.batchSize}, ` +
          `flush_interval_ms ${flush}, requests_per_second ${settings.requestsPerSecond}, concurrency ` +
          `${settings.concurrency}. Writer rates: ${ceilingWriter.perSecond.toFixed(0)}/s (ceiling run), ` +
          `${daemonWriter.perSecond.toFixed(0)}/s (verbose-sync run), ${naiveWriter.perSecond.toFixed(0)}/s ` +
          `(naive run). The naive peer accepted ${naiveSimulator.latenciesMs.length.toLocaleString('en')} of ` +
          `${naiveWriter.rows.toLocaleString('en')} rows before it was cut ${(durationMs + 5_000) / 1000} s after ` +
          'its start: its latencies are those of the rows it got to, the rest waited longer.',
        comparisons: [
          {
            measure: 'commit-to-accepted p50 (ms)',
            verboseSync: p50,
            ceiling: quantile(ceiling.latenciesMs, 0.5),
            naive: quantile(naiveSimulator.latenciesMs, 0.5),
            better: 'lower',
            digits: 1,
          },
          {
            measure: 'commit-to-accepted p99 (ms)',
            verboseSync: p99,
            ceiling: quantile(ceiling.latenciesMs, 0.99),
            naive: quantile(naiveSimulator.latenciesMs, 0.99),
            better: 'lower',
            digits: 1,
          },
          {
            measure: 'rows written per second during the run',
            verboseSync: daemonWriter.perSecond,
            ceiling: ceilingWriter.perSecond,
            naive: naiveWriter.perSecond,
            better: 'higher',
          },
          {
            measure: 'peak RSS (MB)',
            verboseSync: daemonPeak,
            ceiling: ceiling.peakRssMb,
            naive: naive.peakRssMb,
            better: 'lower',
          },
        ],
        targets: [
          {
            target: `p50 commit-to-accepted ≤ flush_interval_ms + 50 ms (${flush + 50} ms)`,
            measured: `${p50.toFixed(0)} ms`,
            met: p50 <= flush + 50,
          },
          {
            target: `p99 commit-to-accepted ≤ twice that (${2 * (flush + 50)} ms)`,
            measured: `${p99.toFixed(0)} ms`,
            met: p99 <= 2 * (flush + 50),
          },
          rssTarget(daemonPeak),
        ],
        peakRss: [
          { process: 'verbose-sync', mb: daemonPeak, liveMb: daemonLive },
          { process: 'no-op consumer', mb: ceiling.peakRssMb },
          { process: 'naive peer', mb: naive.peakRssMb },
        ],
        details: [],
      };
    } finally {
      await database.drop();
    }
  },
};
