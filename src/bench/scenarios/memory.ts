import { type BenchContext, percent, RSS_LIMIT_MB, type Scenario } from '../scenario.js';
import { AcceptingSimulator } from '../support/acceptances.js';
import { BenchDatabase } from '../support/benchDatabase.js';
import { DaemonProcess } from '../support/daemonProcess.js';
import { sleep } from '../support/stats.js';

const RATE = 2;
const MAX_PENDING = 20_000;

interface Sample {
  second: number;
  rssMb: number;
  /** After the last full collection so far (0 before the first). */
  liveMb: number;
  coalescer: number;
  paused: number;
  walMb: number;
}

interface BurstRun {
  changes: number;
  samples: Sample[];
  peakMb: number;
  maxLiveMb: number;
  /** After a full collection forced at the end of the window, with the coalescer at its cap. */
  liveAtEndMb: number;
  delivered: number;
  writeSeconds: number;
}

/**
 * A burst far larger than the coalescer's cap (max_pending_contacts) with Verbose allowing 2 requests/s: the
 * coalescer fills, the stream pauses and the WAL waits on the server, so RSS levels off at the same height
 * whatever the size of the burst. Sampled once a second: RSS from /proc, the coalescer and pause gauges from
 * /metrics, and the WAL the server keeps for the slot.
 */
async function runBurst(context: BenchContext, changes: number, windowMs: number): Promise<BurstRun> {
  const database = await BenchDatabase.create(context.postgres, `bench_memory_${changes}`);
  try {
    await database.createSlots('daemon');
    const simulator = await AcceptingSimulator.start({ faults: { rateLimitPerSecond: RATE } });
    try {
      const daemon = await DaemonProcess.start(
        context.workDir,
        `memory-${changes}`,
        {
          databaseUrl: database.url,
          slot: 'daemon',
          verboseUrl: simulator.url,
          batchSize: 500,
          flushIntervalMs: 1000,
          requestsPerSecond: RATE,
          concurrency: 2,
          maxPendingContacts: MAX_PENDING,
        },
        [],
        { inspect: true },
      );
      const samples: Sample[] = [];
      let writeSeconds = 0;
      let peakMb: number;
      let maxLiveMb = 0;
      let liveAtEndMb = 0;
      try {
        const from = Date.now();
        const writing = database.insert(1, changes, 1_000).then(() => {
          writeSeconds = (Date.now() - from) / 1000;
        });
        // Awaited after the window; a failure meanwhile must not count as unhandled.
        writing.catch(() => {});
        for (let second = 0; second * 1000 < windowMs; second++) {
          await sleep(from + second * 1000 - Date.now());
          const metrics = await daemon.metrics();
          samples.push({
            second,
            rssMb: daemon.rss.samples.at(-1)?.mb ?? 0,
            liveMb: daemon.fullCollections.at(-1)?.liveMb ?? 0,
            coalescer: metrics.get('verbose_sync_coalescer_contacts') ?? 0,
            paused: metrics.get('verbose_sync_stream_paused') ?? 0,
            walMb: (await database.walWaiting('daemon')) / 2 ** 20,
          });
        }
        await writing;
        // Only now, so that RSS above is what V8 does on its own; the peak (VmHWM) is kept by the kernel.
        liveAtEndMb = await daemon.collectGarbage();
      } finally {
        peakMb = await daemon.stop();
        maxLiveMb = daemon.maxLiveMb;
      }
      return { changes, samples, peakMb, maxLiveMb, liveAtEndMb, delivered: simulator.phones, writeSeconds };
    } finally {
      await simulator.close();
    }
  } finally {
    await database.drop();
  }
}

export const memory: Scenario = {
  name: 'memory',
  title: 'Memory under a burst, API at 2 requests/s',
  async run(context) {
    const sizes = context.quick ? [100_000, 200_000] : [250_000, 1_000_000];
    // Long enough to see RSS level off: V8 lets it climb for about 50 s before its first full collection.
    const windowMs = context.quick ? 12_000 : 90_000;
    const results: BurstRun[] = [];
    for (const changes of sizes) {
      context.say(`burst of ${changes} changes`);
      results.push(await runBurst(context, changes, windowMs));
    }
    const [small, large] = results as [BurstRun, BurstRun];
    const growth = large.peakMb / small.peakMb - 1;
    const liveGrowth = large.liveAtEndMb / small.liveAtEndMb - 1;
    const rows: string[] = [
      `| second | RSS (MB), ${label(small.changes)} / ${label(large.changes)} | live heap after the last full GC (MB) | contacts in the coalescer | stream paused | WAL waiting on the server (MB) |`,
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (let i = 0; i < Math.min(small.samples.length, large.samples.length); i += context.quick ? 2 : 6) {
      const a = small.samples[i]!;
      const b = large.samples[i]!;
      rows.push(
        `| ${a.second} | ${a.rssMb.toFixed(0)} / ${b.rssMb.toFixed(0)} | ${a.liveMb.toFixed(0)} / ${b.liveMb.toFixed(0)} | ${a.coalescer.toLocaleString('en')} / ` +
          `${b.coalescer.toLocaleString('en')} | ${a.paused} / ${b.paused} | ${a.walMb.toFixed(0)} / ${b.walMb.toFixed(0)} |`,
      );
    }
    return {
      setup:
        `A running daemon (requests_per_second ${RATE}, batch_size 500, max_pending_contacts ` +
        `${MAX_PENDING.toLocaleString('en')}) and a simulator that allows ${RATE} requests/s; then a burst of ` +
        `inserts, 1,000 rows per transaction, written as fast as the server takes them: ` +
        `${small.changes.toLocaleString('en')} rows (written in ${small.writeSeconds.toFixed(1)} s) in one run, ` +
        `${large.changes.toLocaleString('en')} (${large.writeSeconds.toFixed(1)} s) in another, each observed for ` +
        `${windowMs / 1000} s. No ceiling or naive peer here: the measure is the daemon's own memory.`,
      comparisons: [
        ...results.map((run) => ({
          measure: `peak RSS (MB), ${label(run.changes)} burst`,
          verboseSync: run.peakMb,
          ceiling: undefined,
          naive: undefined,
          better: 'lower' as const,
        })),
        ...results.map((run) => ({
          measure: `live heap at the end, after a forced full GC (MB), ${label(run.changes)} burst`,
          verboseSync: run.liveAtEndMb,
          ceiling: undefined,
          naive: undefined,
          better: 'lower' as const,
          digits: 1,
        })),
      ],
      targets: [
        ...results.map((run) => ({
          target: `peak RSS < ${RSS_LIMIT_MB} MB with a ${label(run.changes)} burst`,
          measured: `${run.peakMb.toFixed(0)} MB`,
          met: run.peakMb < RSS_LIMIT_MB,
        })),
        {
          target: `live heap independent of the burst size (${label(large.changes)} within 10% of ${label(small.changes)})`,
          measured: `${large.liveAtEndMb.toFixed(1)} MB against ${small.liveAtEndMb.toFixed(1)} MB (${signed(liveGrowth)})`,
          met: Math.abs(liveGrowth) <= 0.1,
        },
        {
          target: `peak RSS independent of the burst size (${label(large.changes)} within 10% of ${label(small.changes)})`,
          measured: signed(growth),
          met: Math.abs(growth) <= 0.1,
        },
      ],
      peakRss: [
        { process: `verbose-sync, ${label(small.changes)} burst`, mb: small.peakMb, liveMb: small.maxLiveMb },
        { process: `verbose-sync, ${label(large.changes)} burst`, mb: large.peakMb, liveMb: large.maxLiveMb },
      ],
      details: [
        `Delivered in the window: ${small.delivered.toLocaleString('en')} and ${large.delivered.toLocaleString('en')} ` +
          `contacts (the budget allows ${RATE * 500} a second); the rest waits in the WAL on the server.`,
        '',
        ...rows,
      ],
    };
  },
};

function signed(fraction: number): string {
  return `${fraction >= 0 ? '+' : ''}${percent(fraction)}`;
}

function label(changes: number): string {
  return changes >= 1_000_000 ? `${changes / 1_000_000}M` : `${changes / 1000}k`;
}
