import type { EmbeddedPostgres } from '../embedded/embeddedPostgres.js';

/** What every scenario gets from the runner. */
export interface BenchContext {
  postgres: EmbeddedPostgres;
  /** `--quick`: about a tenth of the sizes and shorter windows, for development. */
  quick: boolean;
  /** A scratch directory of this run (configs, state directories), removed at the end. */
  workDir: string;
  /** Progress lines for whoever watches the run (stderr). */
  say(line: string): void;
}

/** One measure of one scenario, for verbose-sync and for whichever peers were measured beside it. */
export interface Comparison {
  measure: string;
  verboseSync: number | undefined;
  /** The no-op pg-logical-replication consumer (or a plain keyset read, or the rate budget). */
  ceiling: number | undefined;
  naive: number | undefined;
  /** Whether more is better (rates) or worse (latency, requests, memory): says how ratios read. */
  better: 'higher' | 'lower';
  /** Decimal places shown (default 0). */
  digits?: number;
}

export interface TargetOutcome {
  target: string;
  measured: string;
  met: boolean;
}

export interface PeakRss {
  process: string;
  mb: number;
  /** verbose-sync only: the largest heap still in use after a full collection. */
  liveMb?: number;
}

export interface ScenarioResult {
  name: string;
  title: string;
  /** What was run, in a sentence or two (sizes, config, what "ceiling" and "naive" mean here). */
  setup: string;
  comparisons: Comparison[];
  targets: TargetOutcome[];
  peakRss: PeakRss[];
  /** Further markdown: series, notes. */
  details: string[];
  seconds: number;
}

export interface Scenario {
  /** For `--scenario NAME`. */
  name: string;
  title: string;
  run(context: BenchContext): Promise<Omit<ScenarioResult, 'name' | 'title' | 'seconds'>>;
}

/** RSS in MB must stay under this in every scenario (the target). */
export const RSS_LIMIT_MB = 200;

export function rssTarget(peak: number): TargetOutcome {
  return {
    target: `verbose-sync peak RSS < ${RSS_LIMIT_MB} MB`,
    measured: `${peak.toFixed(0)} MB`,
    met: peak < RSS_LIMIT_MB,
  };
}

export function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}
