import type { BenchContext } from '../scenario.js';
import { AcceptingSimulator } from './acceptances.js';
import type { BenchDatabase } from './benchDatabase.js';
import { DaemonProcess, type DaemonSettings, UNTHROTTLED } from './daemonProcess.js';

export interface DeliveryOutcome {
  /** Phones accepted per second, from the start of streaming to the last acceptance. */
  rate: number;
  seconds: number;
  requests: number;
  peakRssMb: number;
  liveMb: number;
}

/**
 * Starts the daemon on `slot` against a fresh simulator and waits until the simulator holds `phones`
 * distinct phones: the end-to-end delivery of a backlog (or of a resync with `--full-resync`).
 */
export async function deliverBacklog(
  context: BenchContext,
  database: BenchDatabase,
  options: {
    label: string;
    slot: string;
    phones: number;
    args?: string[];
    settings?: Partial<DaemonSettings>;
    timeoutMs: number;
  },
): Promise<DeliveryOutcome> {
  const simulator = await AcceptingSimulator.start();
  try {
    const daemon = await DaemonProcess.start(
      context.workDir,
      options.label,
      {
        ...UNTHROTTLED,
        databaseUrl: database.url,
        slot: options.slot,
        verboseUrl: simulator.url,
        ...options.settings,
      },
      options.args,
    );
    let doneAt: number;
    try {
      const streamingAt = await daemon.streaming;
      doneAt = await within(simulator.whenPhones(options.phones), options.timeoutMs, () => {
        return `${options.label}: ${simulator.phones} of ${options.phones} phones delivered`;
      });
      const seconds = (doneAt - streamingAt) / 1000;
      const requests = simulator.simulator.requests
        .entries()
        .filter((entry) => entry.path === '/api/public/contacts').length;
      const peakRssMb = await daemon.stop();
      return { rate: options.phones / seconds, seconds, requests, peakRssMb, liveMb: daemon.maxLiveMb };
    } finally {
      await daemon.stop().catch(() => 0);
    }
  } finally {
    await simulator.close();
  }
}

/** `promise`, or a rejection saying `what()` once `ms` have passed. */
export async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
