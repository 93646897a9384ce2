import { readFileSync } from 'node:fs';

export interface RssSample {
  /** ms since the epoch */
  at: number;
  mb: number;
}

/** VmRSS and VmHWM (the kernel's own peak) of a process, in MB; undefined once it has exited. */
export function readRss(pid: number): { rssMb: number; peakMb: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/**
 * Samples a child process's resident memory from /proc, so that its memory is measured apart from the bench
 * process (which holds the simulator's store). The peak is the kernel's high-water mark, which also catches
 * spikes between samples.
 */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  /** The highest RSS seen so far, in MB. */
  get peakMb(): number {
    return this.peak;
  }

  /** Takes a last sample (call it before the process exits: VmHWM is gone with it) and stops. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peak;
  }

  private sample(): void {
    const rss = readRss(this.pid);
    if (!rss) return;
    this.samples.push({ at: Date.now(), mb: rss.rssMb });
    this.peak = Math.max(this.peak, rss.peakMb, rss.rssMb);
  }
}
