import { rssTarget, type Scenario } from '../scenario.js';
import { AcceptingSimulator } from '../support/acceptances.js';
import { BenchDatabase, phoneOf } from '../support/benchDatabase.js';
import { DaemonProcess, UNTHROTTLED } from '../support/daemonProcess.js';
import { runNaivePeer, runPeer } from '../support/peerProcess.js';
import { sleep, until } from '../support/stats.js';

/**
 * A mass update while the daemon runs: `rounds` passes over the same phones, committed a few hundred rows at a
 * time as fast as the server takes them. Coalescing should turn it into about one request per batch of
 * phones, plus at most one per flush interval that passes while it lasts.
 */
export const burst: Scenario = {
  name: 'burst',
  title: 'Burst of changes to few phones',
  async run(context) {
    const phones = context.quick ? 500 : 5_000;
    const rounds = 20;
    const changes = phones * rounds;
    const perTransaction = 500;
    const naiveLimitMs = context.quick ? 3_000 : 10_000;
    const settings = UNTHROTTLED;
    const database = await BenchDatabase.create(context.postgres, 'bench_burst');
    try {
      await database.insert(1, phones, phones);
      const burstOnce = async (): Promise<{ startedAt: number; writtenAt: number }> => {
        const startedAt = Date.now();
        await database.rewrite(phones, rounds, perTransaction);
        return { startedAt, writtenAt: Date.now() };
      };

      context.say('no-op consumer');
      await database.createSlots('ceiling');
      let ceilingBurst: Promise<{ startedAt: number; writtenAt: number }> | undefined;
      const ceiling = await runPeer(
        { kind: 'noop', databaseUrl: database.url, slot: 'ceiling', expect: changes, timeLimitMs: 120_000 },
        () => {
          ceilingBurst = burstOnce();
          ceilingBurst.catch(() => {});
        },
      );
      const ceilingWrite = await ceilingBurst!;
      await database.sql.query(`SELECT pg_drop_replication_slot('ceiling')`);

      context.say('verbose-sync');
      await database.createSlots('daemon');
      const simulator = await AcceptingSimulator.start();
      const finalName = `Round ${rounds}`;
      const converged = () => {
        for (let id = 1; id <= phones; id++) {
          if (simulator.simulator.store.contact(phoneOf(id))?.first_name !== finalName) return false;
        }
        return true;
      };
      let daemonPeak: number;
      let daemonLive = 0;
      let write: { startedAt: number; writtenAt: number };
      let requests: number;
      let convergedAt: number;
      let timeline: string[] = [];
      try {
        const daemon = await DaemonProcess.start(context.workDir, 'burst', {
          ...settings,
          databaseUrl: database.url,
          slot: 'daemon',
          verboseUrl: simulator.url,
        });
        try {
          write = await burstOnce();
          if (!(await until(converged, 120_000, 50))) throw new Error('burst: the phones never converged');
          convergedAt = simulator.lastAcceptedAt!;
          // Anything still to come would be a wasted request: give it two flush intervals to show up.
          await sleep(2 * settings.flushIntervalMs);
          const upserts = simulator.simulator.requests
            .entries()
            .filter((entry) => entry.path === '/api/public/contacts');
          requests = upserts.length;
          timeline = upserts.map(
            (entry) => `${((entry.time - write.startedAt) / 1000).toFixed(2)} s: ${entry.contacts}`,
          );
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
      let naiveBurst: Promise<{ startedAt: number; writtenAt: number }> | undefined;
      const naive = await runNaivePeer(
        {
          kind: 'naive',
          databaseUrl: database.url,
          slot: 'naive',
          expect: changes,
          timeLimitMs: naiveLimitMs,
        },
        {},
        () => {
          naiveBurst = burstOnce();
          naiveBurst.catch(() => {});
        },
      );
      await naiveBurst;

      const elapsedMs = convergedAt - write.startedAt;
      const allowance =
        Math.ceil(phones / settings.batchSize) + Math.floor(elapsedMs / settings.flushIntervalMs);
      return {
        setup:
          `${phones.toLocaleString('en')} rows, then ${rounds} passes each rewriting every row's first_name ` +
          `(${changes.toLocaleString('en')} changes to ${phones.toLocaleString('en')} phones), ${perTransaction} ` +
          `rows per transaction, written while the consumer runs (${((write.writtenAt - write.startedAt) / 1000).toFixed(1)} s ` +
          `to write for verbose-sync; ${((ceilingWrite.writtenAt - ceilingWrite.startedAt) / 1000).toFixed(1)} s for ` +
          'the ceiling). verbose-sync ends when every phone in the simulator shows the last pass; requests are ' +
          `counted ${(2 * settings.flushIntervalMs) / 1000} s after that. Allowance = ceil(${phones} / ` +
          `${settings.batchSize}) + one per flush interval (${settings.flushIntervalMs} ms) elapsed from the first ` +
          `write to convergence (${(elapsedMs / 1000).toFixed(2)} s). The naive peer makes one request per change ` +
          `by construction; it is cut after ${naiveLimitMs / 1000} s and its time extrapolated.`,
        comparisons: [
          {
            measure: 'requests to Verbose',
            verboseSync: requests,
            ceiling: allowance,
            naive: changes + (naive.requests - naive.changes),
            better: 'lower',
          },
          {
            measure: 'seconds from the first write to the last change delivered',
            verboseSync: elapsedMs / 1000,
            ceiling: (ceiling.lastAt - ceilingWrite.startedAt) / 1000,
            naive: changes / naive.rate,
            better: 'lower',
            digits: 1,
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
            target: 'requests ≤ ceil(phones / batch_size) + one per flush interval elapsed',
            measured: `${requests} requests, allowance ${allowance}`,
            met: requests <= allowance,
          },
          rssTarget(daemonPeak),
        ],
        peakRss: [
          { process: 'verbose-sync', mb: daemonPeak, liveMb: daemonLive },
          { process: 'no-op consumer', mb: ceiling.peakRssMb },
          { process: 'naive peer', mb: naive.peakRssMb },
        ],
        details: [
          'In the "ceiling" column of the requests row stands the allowance, and of the seconds row the time the ' +
            'no-op consumer took to receive every change.',
          '',
          `verbose-sync's requests (time after the first write: contacts): ${timeline.join(', ')}.`,
        ],
      };
    } finally {
      await database.drop();
    }
  },
};
