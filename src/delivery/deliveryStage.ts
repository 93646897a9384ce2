import type { Config } from '../config/schema.js';
import type { ListTarget, Lsn } from '../domain.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../ops/metrics.js';
import { Checkpoint } from './checkpoint.js';
import type { Now, Sleep } from './clock.js';
import { Coalescer, type VerboseContact } from './coalescer.js';
import { Delivery, type DeliveryFatalError } from './delivery.js';
import { RateBudget } from './rateBudget.js';
import { RejectLog } from './rejectLog.js';
import { type ContactSender, VerboseClient } from './verboseClient.js';

export interface DeliveryStage {
  client: VerboseClient;
  coalescer: Coalescer;
  checkpoint: Checkpoint;
  rejects: RejectLog;
  delivery: Delivery;
}

export interface DeliveryStageOptions {
  config: Config;
  /** The acknowledged position to start from. */
  start: Lsn;
  log: Logger;
  metrics: Metrics;
  now: Now;
  sleep: Sleep;
  onFatal: (error: DeliveryFatalError) => void;
  /** See `RejectLogOptions.collapseRepeats`: the daemon's choice; `rejects --retry` records every reject. */
  collapseRepeatedRejects?: boolean;
  /** `--dry-run`: each request is handed here instead of being sent; nothing is acknowledged. */
  dryRun?: ((target: ListTarget, contacts: VerboseContact[]) => void) | undefined;
  /** The wire client, when the caller made it already (to check the key before anything else). */
  client?: VerboseClient;
  /** Wraps the wire client, e.g. to watch its outcomes. */
  observe?: (client: VerboseClient) => ContactSender;
}

/** The coalescer, checkpoint, rate budget, wire client, reject log and delivery, built from the config. */
export function buildDeliveryStage(options: DeliveryStageOptions): DeliveryStage {
  const { config, metrics, now, sleep } = options;
  const client = options.client ?? verboseClient(config);
  const coalescer = new Coalescer({
    maxPending: config.max_pending_contacts,
    now,
    sizeGauge: metrics.coalescerSize,
  });
  const checkpoint = new Checkpoint({ coalescer, start: options.start, now, metrics });
  const rejects = new RejectLog({
    stateDir: config.state_dir,
    now,
    collapseRepeats: options.collapseRepeatedRejects ?? false,
  });
  const budget = new RateBudget({
    requestsPerSecond: config.verbose.requests_per_second,
    now,
    sleep,
    onRate: (rate) => metrics.rateLimit.set(rate),
  });
  const delivery = new Delivery({
    coalescer,
    checkpoint,
    client: options.observe?.(client) ?? client,
    budget,
    rejects,
    batchSize: config.verbose.batch_size,
    flushIntervalMs: config.verbose.flush_interval_ms,
    concurrency: config.verbose.concurrency,
    retryAlarmMs: config.verbose.retry_alarm_ms,
    log: options.log.child({ component: 'delivery' }),
    metrics,
    now,
    sleep,
    random: Math.random,
    ...(options.dryRun ? { dryRun: options.dryRun } : {}),
    onFatal: options.onFatal,
  });
  return { client, coalescer, checkpoint, rejects, delivery };
}

export function verboseClient(config: Config): VerboseClient {
  return new VerboseClient({
    url: config.verbose.url,
    apiKey: config.verbose.api_key,
    requestTimeoutMs: config.verbose.request_timeout_ms,
  });
}
