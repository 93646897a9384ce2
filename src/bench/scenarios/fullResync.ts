import { percent, rssTarget, type Scenario } from '../scenario.js';
import { AcceptingSimulator } from '../support/acceptances.js';
import { BenchDatabase } from '../support/benchDatabase.js';
import { DaemonProcess } from '../support/daemonProcess.js';
import { deliverBacklog } from '../support/deliveryRun.js';
import { runNaivePeer, runPeer } from '../support/peerProcess.js';
import { sleep } from '../support/stats.js';

const CHUNK_SIZE = 5_000;
const RATE = 5;

/**
 * `--full-resync` of a table that is already there (nothing waits in the slot): the watermark-chunked read
 * plus delivery, beside a plain keyset read of the same table, unthrottled and within a 5 requests/s budget.
 */
export const fullResync: Scenario = {
  name: 'full-resync',
  title: 'Full resync',
  async run(context) {
    const rows = context.quick ? 100_000 : 1_000_000;
    const throttledWindowMs = context.quick ? 5_000 : 15_000;
    const naiveLimitMs = context.quick ? 3_000 : 10_000;
    const database = await BenchDatabase.create(context.postgres, 'bench_full_resync');
    try {
      context.say(`writing ${rows} rows`);
      await database.insert(1, rows, 100_000);
      await database.sql.query('VACUUM ANALYZE contacts');

      context.say('plain keyset read');
      const keyset = await runPeer({
        kind: 'keyset',
        databaseUrl: database.url,
        expect: rows,
        timeLimitMs: 300_000,
        chunkSize: CHUNK_SIZE,
      });

      context.say('verbose-sync --full-resync');
      const unthrottled = await deliverBacklog(context, database, {
        label: 'full-resync',
        slot: 'daemon',
        phones: rows,
        args: ['--full-resync'],
        timeoutMs: 600_000,
      });

      context.say(`verbose-sync --full-resync at ${RATE} requests/s`);
      const simulator = await AcceptingSimulator.start({ faults: { rateLimitPerSecond: RATE } });
      let throttledPeak: number;
      let throttledLive = 0;
      let throttledRows: number;
      let throttledRequests: number;
      try {
        const daemon = await DaemonProcess.start(
          context.workDir,
          'full-resync-throttled',
          {
            databaseUrl: database.url,
            slot: 'daemon_throttled',
            verboseUrl: simulator.url,
            batchSize: 500,
            flushIntervalMs: 1000,
            requestsPerSecond: RATE,
            concurrency: 2,
          },
          ['--full-resync'],
        );
        try {
          await sleep((await daemon.streaming) + throttledWindowMs - Date.now());
          throttledRows = simulator.phones;
          throttledRequests = simulator.simulator.requests.countOf(200);
        } finally {
          throttledPeak = await daemon.stop();
          throttledLive = daemon.maxLiveMb;
        }
      } finally {
        await simulator.close();
      }

      context.say('naive peer');
      const naive = await runNaivePeer({
        kind: 'naive-copy',
        databaseUrl: database.url,
        expect: rows,
        timeLimitMs: naiveLimitMs,
        chunkSize: CHUNK_SIZE,
      });

      const ratio = unthrottled.rate / keyset.rate;
      const throttledRate = throttledRows / (throttledWindowMs / 1000);
      const budgetRate = RATE * 500;
      return {
        setup:
          `${rows.toLocaleString('en')} rows in the table before the daemon's slot exists. verbose-sync runs with ` +
          `\`--full-resync\` (resync.chunk_size ${CHUNK_SIZE}, batch_size 500): unthrottled until the simulator ` +
          `holds every phone, then on a fresh slot with requests_per_second ${RATE} against a simulator limited ` +
          `to ${RATE}/s, measured over ${throttledWindowMs / 1000} s (the ceiling there is the budget, ` +
          `${budgetRate.toLocaleString('en')} rows/s). Ceiling: a plain keyset read of the same table ` +
          `(SELECT * … WHERE id > $1 ORDER BY id LIMIT ${CHUNK_SIZE}) in its own process. Naive peer: the same ` +
          `read, each row POSTed on its own, cut after ${naiveLimitMs / 1000} s.`,
        comparisons: [
          {
            measure: 'rows per second, unthrottled',
            verboseSync: unthrottled.rate,
            ceiling: keyset.rate,
            naive: naive.rate,
            better: 'higher',
          },
          {
            measure: `rows per second at ${RATE} requests/s`,
            verboseSync: throttledRate,
            ceiling: budgetRate,
            naive: undefined,
            better: 'higher',
          },
          {
            measure: 'seconds for the whole table, unthrottled',
            verboseSync: unthrottled.seconds,
            ceiling: keyset.seconds,
            naive: rows / naive.rate,
            better: 'lower',
            digits: 1,
          },
          {
            measure: 'peak RSS (MB)',
            verboseSync: Math.max(unthrottled.peakRssMb, throttledPeak),
            ceiling: keyset.peakRssMb,
            naive: naive.peakRssMb,
            better: 'lower',
          },
        ],
        targets: [
          {
            target: 'full resync ≥ 50% of a plain keyset read',
            measured: percent(ratio),
            met: ratio >= 0.5,
          },
          rssTarget(Math.max(unthrottled.peakRssMb, throttledPeak)),
        ],
        peakRss: [
          { process: 'verbose-sync (unthrottled)', mb: unthrottled.peakRssMb, liveMb: unthrottled.liveMb },
          { process: `verbose-sync (${RATE} requests/s)`, mb: throttledPeak, liveMb: throttledLive },
          { process: 'keyset read', mb: keyset.peakRssMb },
          { process: 'naive peer', mb: naive.peakRssMb },
        ],
        details: [
          `At ${RATE} requests/s: ${throttledRows.toLocaleString('en')} rows in ${throttledRequests} accepted ` +
            `requests in ${throttledWindowMs / 1000} s, ${percent(throttledRate / budgetRate)} of what the budget allows.`,
        ],
      };
    } finally {
      await database.drop();
    }
  },
};
