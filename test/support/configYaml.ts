/** Where the daemon under test reads from and delivers to. */
export interface ConfigTargets {
  /** The CRM database; its name is the slot's and the publication's too. */
  db: { url: string; name: string };
  verboseUrl: string;
  stateDir: string;
  /** The YAML `mappings:` section. */
  mappings: string;
}

/** The knobs a test turns; each left out is the fast-moving test default, or the product's if it has none. */
export interface ConfigSettings {
  statusIntervalMs?: number;
  heartbeatIntervalMs?: number;
  apiKey?: string;
  batchSize?: number;
  flushIntervalMs?: number;
  requestsPerSecond?: number;
  concurrency?: number;
  requestTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  httpHost?: string;
  chunkSize?: number;
  schedule?: string;
  /** More YAML, placed right after the `resync:` section. */
  extra?: string;
}

/** A sync.yaml for a test: the daemon on `target`, tuned by `settings`, its ops server on a free port. */
export function testConfigYaml(target: ConfigTargets, settings: ConfigSettings = {}): string {
  const optional = (key: string, value: string | number | undefined) =>
    value === undefined ? [] : [`${key}: ${value}`];
  return [
    '',
    'source:',
    `  url: ${target.db.url}`,
    `  slot: ${target.db.name}`,
    `  publication: ${target.db.name}`,
    `  status_interval_ms: ${settings.statusIntervalMs ?? 200}`,
    `  heartbeat_interval_ms: ${settings.heartbeatIntervalMs ?? 500}`,
    'verbose:',
    `  url: ${target.verboseUrl}`,
    `  api_key: ${settings.apiKey ?? 'as_test_key'}`,
    `  batch_size: ${settings.batchSize ?? 100}`,
    `  flush_interval_ms: ${settings.flushIntervalMs ?? 50}`,
    `  requests_per_second: ${settings.requestsPerSecond ?? 200}`,
    `  concurrency: ${settings.concurrency ?? 4}`,
    ...optional('  request_timeout_ms', settings.requestTimeoutMs),
    `state_dir: ${target.stateDir}`,
    ...optional('shutdown_timeout_ms', settings.shutdownTimeoutMs),
    'http:',
    ...optional('  host', settings.httpHost),
    '  port: 0',
    'resync:',
    `  chunk_size: ${settings.chunkSize ?? 250}`,
    ...(settings.schedule ? [`  schedule: "${settings.schedule}"`] : []),
    settings.extra ?? '',
    target.mappings,
  ].join('\n');
}
