import { type BenchContext, percent, rssTarget, type ScenarioResult } from '../scenario.js';
import { BenchDatabase } from './benchDatabase.js';
import { deliverBacklog } from './deliveryRun.js';
import { runNaivePeer, runPeer } from './peerProcess.js';

/**
 * The same backlog of inserts consumed three times, each consumer on its own slot made before the writes: the
 * no-op consumer (ceiling), verbose-sync end to end into the simulator, and the naive peer (time-boxed).
 */
export async function raceBacklog(
  context: BenchContext,
  options: { database: string; rows: number; perTransaction: number; describe: string },
): Promise<Omit<ScenarioResult, 'name' | 'title' | 'seconds'>> {
  const { rows } = options;
  const naiveLimitMs = context.quick ? 3_000 : 10_000;
  const database = await BenchDatabase.create(context.postgres, options.database);
  try {
    await database.createSlots('ceiling', 'daemon', 'naive');
    context.say(`writing ${options.describe}`);
    await database.insert(1, rows, options.perTransaction);

    context.say('no-op consumer');
    const ceiling = await runPeer({
      kind: 'noop',
      databaseUrl: database.url,
      slot: 'ceiling',
      expect: rows,
      timeLimitMs: 300_000,
    });
    context.say('verbose-sync');
    const daemon = await deliverBacklog(context, database, {
      label: options.database,
      slot: 'daemon',
      phones: rows,
      timeoutMs: 300_000,
    });
    context.say('naive peer');
    const naive = await runNaivePeer({
      kind: 'naive',
      databaseUrl: database.url,
      slot: 'naive',
      expect: rows,
      timeLimitMs: naiveLimitMs,
    });

    const ratio = daemon.rate / ceiling.rate;
    return {
      setup:
        `${options.describe} written before any consumer starts; each consumer has its own slot, made before ` +
        'the writes, so each is handed the same changes. Rates run from the start of streaming to the last ' +
        'change handled (ceiling) or to the last contact accepted by the simulator (verbose-sync, naive peer). ' +
        `The naive peer is cut after ${naiveLimitMs / 1000} s` +
        (naive.complete
          ? '.'
          : ` (it had delivered ${naive.changes.toLocaleString('en')}); its time for the whole backlog is extrapolated from its rate.`),
      comparisons: [
        {
          measure: 'changes delivered per second',
          verboseSync: daemon.rate,
          ceiling: ceiling.rate,
          naive: naive.rate,
          better: 'higher',
        },
        {
          measure: 'seconds for the whole backlog',
          verboseSync: daemon.seconds,
          ceiling: ceiling.seconds,
          naive: rows / naive.rate,
          better: 'lower',
          digits: 1,
        },
        {
          measure: 'requests to Verbose (naive: one per change)',
          verboseSync: daemon.requests,
          ceiling: undefined,
          naive: rows,
          better: 'lower',
        },
        {
          measure: 'peak RSS (MB)',
          verboseSync: daemon.peakRssMb,
          ceiling: ceiling.peakRssMb,
          naive: naive.peakRssMb,
          better: 'lower',
        },
      ],
      targets: [
        {
          target: 'delivered end to end at ≥ 60% of the no-op consumer’s rate',
          measured: percent(ratio),
          met: ratio >= 0.6,
        },
        rssTarget(daemon.peakRssMb),
      ],
      peakRss: [
        { process: 'verbose-sync', mb: daemon.peakRssMb, liveMb: daemon.liveMb },
        { process: 'no-op consumer', mb: ceiling.peakRssMb },
        { process: 'naive peer', mb: naive.peakRssMb },
      ],
      details: [],
    };
  } finally {
    await database.drop();
  }
}
