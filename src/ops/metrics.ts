import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric verbose-sync exposes on /metrics, on a registry of its own (so several daemons can live in one
 * test process). Stages receive this object rather than importing a global.
 */
export class Metrics {
  readonly registry = new Registry();
  private checkpointAge: (() => number) | undefined;

  readonly replicationLagBytes = this.gauge(
    'replication_lag_bytes',
    'Bytes of WAL between the server and the acknowledged position.',
  );
  readonly changesReceived = this.counter(
    'changes_received_total',
    'Row changes received, by table and operation.',
    ['table', 'op'],
  );
  readonly changesSkipped = this.counter(
    'changes_skipped_total',
    'Row changes that produce no contact, by reason (delete, not_matching, truncate).',
    ['table', 'reason'],
  );
  readonly phoneCollisions = this.counter(
    'phone_collisions_total',
    'Rows whose phone normalises to a number another row already has in the same list.',
    ['table'],
  );
  readonly contactsSent = this.counter('contacts_sent_total', 'Contacts accepted by Verbose.');
  readonly contactsUnchanged = this.counter(
    'contacts_unchanged_total',
    'Live changes not sent because Verbose already holds exactly those values (accepted earlier by this process).',
  );
  readonly requests = this.counter('requests_total', 'Requests to Verbose, by HTTP status (or "network").', [
    'status',
  ]);
  readonly retries = this.counter('retries_total', 'Requests retried after a transient failure.');
  readonly retryAlarm = this.gauge(
    'retry_alarm',
    '1 while a batch has been retried for longer than verbose.retry_alarm_ms.',
  );
  readonly rejects = this.counter(
    'rejects_total',
    'Contacts set aside as unsendable, by where (mapping or api).',
    ['stage'],
  );
  readonly batchSize = this.histogram(
    'batch_size',
    'Contacts per request.',
    [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
  );
  readonly requestSeconds = this.histogram(
    'request_duration_seconds',
    'Latency of requests to Verbose.',
    [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly rateLimit = this.gauge(
    'rate_limit_requests_per_second',
    'The request rate currently allowed (lowered while Verbose answers 429).',
  );
  readonly coalescerSize = this.gauge('coalescer_contacts', 'Contacts waiting for delivery.');
  readonly streamPaused = this.gauge(
    'stream_paused',
    '1 while reading is paused because the coalescer is full.',
  );
  readonly reconnects = this.counter('reconnects_total', 'Reconnections to the replication stream.');
  readonly heartbeats = this.counter('heartbeats_total', 'Heartbeat messages written to the WAL.');
  readonly acknowledgedLsn = this.gauge(
    'acknowledged_lsn',
    'The acknowledged commit position (as a number).',
  );
  readonly checkpointAgeSeconds = this.gauge(
    'checkpoint_age_seconds',
    'Seconds since the checkpoint last moved while work was pending (0 when nothing is pending).',
    [],
    // Computed when scraped: a stuck checkpoint is exactly when nothing else would update the gauge.
    () => this.checkpointAge?.(),
  );
  readonly resyncRowsDone = this.gauge(
    'resync_rows_done',
    'Rows read by the running full resync, by table.',
    ['table'],
  );
  readonly resyncRowsTotal = this.gauge(
    'resync_rows_estimated',
    'Estimated rows to read in the running full resync, by table.',
    ['table'],
  );
  readonly resyncRunning = this.gauge('resync_running', '1 while a full resync is running.');

  constructor(options: { defaults?: boolean } = {}) {
    if (options.defaults ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'verbose_sync_' });
  }

  /** Where `checkpoint_age_seconds` is read from at each scrape. */
  checkpointAgeFrom(read: () => number): void {
    this.checkpointAge = read;
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[] = []) {
    return new Counter<L>({ name: `verbose_sync_${name}`, help, labelNames, registers: [this.registry] });
  }

  /** `read`, when given, sets the gauge at each scrape (when it returns a number). */
  private gauge<L extends string>(
    name: string,
    help: string,
    labelNames: L[] = [],
    read?: () => number | undefined,
  ) {
    return new Gauge<L>({
      name: `verbose_sync_${name}`,
      help,
      labelNames,
      registers: [this.registry],
      ...(read
        ? {
            collect(this: Gauge<L>) {
              const value = read();
              if (value !== undefined) this.set(value);
            },
          }
        : {}),
    });
  }

  private histogram(name: string, help: string, buckets: number[]) {
    return new Histogram({ name: `verbose_sync_${name}`, help, buckets, registers: [this.registry] });
  }
}
