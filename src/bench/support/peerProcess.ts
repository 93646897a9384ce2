import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeerMessage, PeerOptions, PeerReport } from '../peer.js';
import { AcceptingSimulator } from './acceptances.js';
import { LIST } from './daemonProcess.js';
import { RssSampler } from './rssSampler.js';

const PEER = fileURLToPath(new URL('../peer.js', import.meta.url));

export interface PeerOutcome extends PeerReport {
  peakRssMb: number;
  /** Changes per second from the start of streaming (or reading) to the last change handled. */
  rate: number;
  seconds: number;
}

/**
 * Runs one peer consumer (see `peer.ts`) in its own process and resolves with what it measured. `onStarted`
 * is called when its stream (or read) has begun, for scenarios that write while it listens.
 */
export function runPeer(options: PeerOptions, onStarted?: (at: number) => void): Promise<PeerOutcome> {
  const child = fork(PEER, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const rss = new RssSampler(child.pid!);
  return new Promise<PeerOutcome>((resolve, reject) => {
    let report: PeerReport | undefined;
    child.on('message', (message: PeerMessage) => {
      if (message.kind === 'started') onStarted?.(message.at);
      else {
        report = message.report;
        rss.stop();
        // Keep-alive sockets would hold it a few seconds more: it has said all it had to say.
        child.kill('SIGTERM');
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      rss.stop();
      if (!report) {
        reject(new Error(`the ${options.kind} peer exited (${String(code)}) without a report`));
        return;
      }
      const seconds = Math.max(0.001, (report.lastAt - report.startedAt) / 1000);
      resolve({ ...report, peakRssMb: rss.peakMb, seconds, rate: report.changes / seconds });
    });
  });
}

/**
 * A naive peer (one POST per change) against a simulator of its own, started with `simulator` and closed once
 * the peer is done; the simulator is returned too, for what it recorded.
 */
export async function runNaivePeer(
  options: Omit<PeerOptions, 'verboseUrl' | 'list'>,
  simulator: Parameters<typeof AcceptingSimulator.start>[0] = {},
  onStarted?: (at: number) => void,
): Promise<PeerOutcome & { simulator: AcceptingSimulator }> {
  const accepting = await AcceptingSimulator.start(simulator);
  try {
    const outcome = await runPeer({ ...options, verboseUrl: accepting.url, list: LIST }, onStarted);
    return { ...outcome, simulator: accepting };
  } finally {
    await accepting.close();
  }
}
