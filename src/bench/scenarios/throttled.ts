import { percent, rssTarget, type Scenario } from '../scenario.js';
import { AcceptingSimulator } from '../support/acceptances.js';
import { BenchDatabase } from '../support/benchDatabase.js';
import { DaemonProcess } from '../support/daemonProcess.js';
import { runNaivePeer } from '../support/peerProcess.js';
import { mean, sleep } from '../support/stats.js';

const RATE = 5;

/**
 * Verbose allows 5 requests per second (the simulator refuses the rest with 429) and a backlog larger than the
 * window can drain: every request should go out, full, at the budget's pace, and none should be refused.
 */
export const throttled: Scenario = {
  name: 'throttled',
  title: 'Throttled API (5 requests/s)',
  async run(context) {
    const windowMs = context.quick ? 6_000 : 20_000;
    const naiveLimitMs = context.quick ? 3_000 : 10_000;
    const batchSize = 500;
    // More than the window can drain, so a backlog exists throughout.
    const rows = Math.ceil((RATE * batchSize * windowMs) / 1000) * 2;
    const database = await BenchDatabase.create(context.postgres, 'bench_throttled');
    try {
      await database.createSlots('daemon', 'naive');
      context.say(`writing ${rows} rows, 100 per transaction`);
      await database.insert(1, rows, 100);

      context.say('verbose-sync');
      const simulator = await AcceptingSimulator.start({ faults: { rateLimitPerSecond: RATE } });
      let peak: number;
      let live = 0;
      let from: number;
      try {
        const daemon = await DaemonProcess.start(context.workDir, 'throttled', {
          databaseUrl: database.url,
          slot: 'daemon',
          verboseUrl: simulator.url,
          batchSize,
          flushIntervalMs: 1000,
          requestsPerSecond: RATE,
          concurrency: 2,
        });
        try {
          from = await daemon.streaming;
          await sleep(from + windowMs - Date.now());
        } finally {
          peak = await daemon.stop();
          live = daemon.maxLiveMb;
        }
      } finally {
        await simulator.close();
      }
      const to = from + windowMs;
      const inWindow = simulator.simulator.requests
        .entries()
        .filter((entry) => entry.path === '/api/public/contacts' && entry.time >= from && entry.time < to);
      const accepted = inWindow.filter((entry) => entry.status === 200);
      const refused = inWindow.filter((entry) => entry.status === 429).length;
      const budget = (RATE * windowMs) / 1000;
      const used = accepted.length / budget;
      const refusedShare = inWindow.length === 0 ? 0 : refused / inWindow.length;
      const fullness = mean(accepted.map((entry) => entry.contacts / batchSize));
      const fullest = accepted.filter((entry) => entry.contacts === batchSize).length;

      context.say('naive peer');
      const naive = await runNaivePeer(
        { kind: 'naive', databaseUrl: database.url, slot: 'naive', expect: rows, timeLimitMs: naiveLimitMs },
        { faults: { rateLimitPerSecond: RATE } },
      );
      const naiveRefused = naive.byStatus['429'] ?? 0;
      const naiveSeconds = naiveLimitMs / 1000;

      const contactsPerSecond = accepted.reduce((sum, entry) => sum + entry.contacts, 0) / (windowMs / 1000);
      return {
        setup:
          `The simulator allows ${RATE} requests/s (token bucket, burst ${RATE}; 429 with Retry-After beyond it). ` +
          `A backlog of ${rows.toLocaleString('en')} rows (twice what the window can drain) waits in the slot; ` +
          `verbose-sync (requests_per_second ${RATE}, batch_size ${batchSize}, concurrency 2) is measured over the ` +
          `first ${windowMs / 1000} s after its stream starts. The ceiling is the budget itself: ${RATE} requests ` +
          `of ${batchSize} contacts a second. The naive peer (one contact per request, waiting out Retry-After) ` +
          `runs ${naiveSeconds} s on the same backlog against a simulator with the same limit.`,
        comparisons: [
          {
            measure: 'contacts accepted per second',
            verboseSync: contactsPerSecond,
            ceiling: RATE * batchSize,
            naive: naive.changes / naiveSeconds,
            better: 'higher',
          },
          {
            measure: 'requests accepted per second',
            verboseSync: accepted.length / (windowMs / 1000),
            ceiling: RATE,
            naive: (naive.byStatus['200'] ?? 0) / naiveSeconds,
            better: 'higher',
            digits: 2,
          },
          {
            measure: 'share of requests answered 429 (%)',
            verboseSync: refusedShare * 100,
            ceiling: 0,
            naive: naive.requests === 0 ? 0 : (naiveRefused / naive.requests) * 100,
            better: 'lower',
            digits: 1,
          },
          {
            measure: 'mean batch fullness (%)',
            verboseSync: fullness * 100,
            ceiling: 100,
            naive: (1 / batchSize) * 100,
            better: 'higher',
            digits: 1,
          },
          {
            measure: 'peak RSS (MB)',
            verboseSync: peak,
            ceiling: undefined,
            naive: naive.peakRssMb,
            better: 'lower',
          },
        ],
        targets: [
          {
            target: '≥ 95% of the request budget used',
            measured: `${percent(used)} (${accepted.length} accepted of ${budget} allowed)`,
            met: used >= 0.95,
          },
          {
            target: '< 1% of requests answered 429',
            measured: `${percent(refusedShare)} (${refused} of ${inWindow.length})`,
            met: refusedShare < 0.01,
          },
          {
            target: 'batches ≥ 95% full while a backlog exists',
            measured: `${percent(fullness)} mean; ${fullest} of ${accepted.length} requests full`,
            met: fullness >= 0.95,
          },
          rssTarget(peak),
        ],
        peakRss: [
          { process: 'verbose-sync', mb: peak, liveMb: live },
          { process: 'naive peer', mb: naive.peakRssMb },
        ],
        details: [],
      };
    } finally {
      await database.drop();
    }
  },
};
