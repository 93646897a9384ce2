import pg from 'pg';
import type { LoadedConfig } from '../config/load.js';
import { verboseClient } from '../delivery/deliveryStage.js';
import { errorMessage } from '../errors.js';
import { scrubber } from '../log.js';
import { Mapper } from '../mapping/mapper.js';
import { checkMappings, formatPreview, previewMappings } from '../mapping/preview.js';
import { SourceError, verifySource } from '../source/setup.js';

/** Exit codes: 0 all good (or something could not be reached, said plainly); 2 a mapping does not fit the database; 1 a problem to fix on the database or the API key. */
const OK = 0;
const PROBLEM = 1;
const INVALID = 2;

/**
 * `verbose-sync validate`: the configuration, the database (read-only checks: nothing is created) and the API
 * key, then a preview of the contacts a few real rows would become. Sends nothing to Verbose but `GET /me`.
 */
export async function runValidate(loaded: LoadedConfig): Promise<number> {
  const { config } = loaded;
  const scrub = scrubber(loaded.secrets);
  const say = (line: string) => process.stdout.write(`${scrub(line)}\n`);
  const mapper = Mapper.fromConfig(config);
  let code = OK;
  let unchecked = 0;

  say(
    `✓ configuration ${loaded.file}: ${config.mappings.length} mapping(s) over ${mapper.tables().join(', ')}`,
  );

  const client = new pg.Client({
    connectionString: config.source.url,
    connectionTimeoutMillis: 10_000,
    application_name: 'verbose-sync validate',
  });
  client.on('error', () => {});
  let connected = false;
  try {
    await client.connect();
    connected = true;
  } catch (error) {
    say(`? database: could not connect (${errorMessage(error)}); its checks were skipped`);
    unchecked += 1;
  }
  if (connected) {
    try {
      code = Math.max(code, await checkDatabase(client, loaded, mapper, say));
    } finally {
      await client.end().catch(() => {});
    }
  }

  const verbose = verboseClient({
    ...config,
    verbose: { ...config.verbose, request_timeout_ms: Math.min(config.verbose.request_timeout_ms, 15_000) },
  });
  try {
    const me = await verbose.me();
    if (me.kind === 'ok')
      say(`✓ Verbose: the API key is accepted (workspace ${JSON.stringify(me.workspace.name)})`);
    else if (me.kind === 'unauthorized') {
      say(`✗ Verbose: the API key was refused (HTTP ${me.status}); check verbose.api_key`);
      code = Math.max(code, PROBLEM);
    } else {
      say(`? Verbose: not reachable at ${config.verbose.url} (${me.detail}); the key was not checked`);
      unchecked += 1;
    }
  } finally {
    await verbose.close();
  }

  if (code !== OK) say('not valid: fix the problems marked ✗');
  else if (unchecked > 0)
    say('valid as far as it could be checked: run again where the parts marked ? can be reached');
  else say('valid: nothing to fix');
  return code;
}

async function checkDatabase(
  client: pg.Client,
  loaded: LoadedConfig,
  mapper: Mapper,
  say: (line: string) => void,
): Promise<number> {
  const { config } = loaded;
  let code = OK;
  try {
    const verified = await verifySource(client, mapper.tables());
    say(
      `✓ database ${verified.database}: PostgreSQL ${Math.floor(verified.serverVersion / 10000)}, wal_level logical, ` +
        `the role may replicate, ${verified.tables.length} mapped table(s) with a key`,
    );
  } catch (error) {
    if (!(error instanceof SourceError)) throw error;
    for (const line of error.message.split('\n')) say(`✗ database: ${line}`);
    code = PROBLEM;
  }
  say(`  ${await describeSlot(client, config.source.slot)}`);
  say(`  ${await describePublication(client, config.source.publication)}`);

  const problems = await checkMappings(client, mapper, config.mappings);
  // Each message already ends with its "did you mean".
  for (const problem of problems) say(`✗ ${loaded.file}: ${problem.path}: ${problem.message}`);
  if (problems.length > 0) return INVALID;

  say('Preview: the contacts a few real rows would become (nothing is sent)');
  const preview = await previewMappings(client, mapper, { rowsPerTable: 5 });
  for (const line of formatPreview(preview).split('\n')) say(`  ${line}`);
  return code;
}

async function describeSlot(client: pg.Client, slot: string): Promise<string> {
  const { rows } = await client.query<{ active: boolean; wal_status: string | null; lag: string | null }>(
    `SELECT active, wal_status::text, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) AS lag
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return `slot ${slot}: does not exist yet; the first run creates it and loads every existing row`;
  if (row.wal_status === 'lost')
    return `slot ${slot}: ✗ invalidated (wal_status lost); run verbose-sync --full-resync`;
  return `slot ${slot}: exists, ${row.active ? 'in use' : 'idle'}, ${row.lag ?? 'no'} behind`;
}

async function describePublication(client: pg.Client, publication: string): Promise<string> {
  const { rows } = await client.query<{ tables: string[] }>(
    `SELECT array_agg(schemaname || '.' || tablename ORDER BY 1) FILTER (WHERE tablename IS NOT NULL) AS tables
       FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname
      WHERE p.pubname = $1 GROUP BY p.pubname`,
    [publication],
  );
  const row = rows[0];
  if (!row)
    return `publication ${publication}: does not exist yet; the first run creates it for the mapped tables`;
  return `publication ${publication}: exists, publishing ${(row.tables ?? []).join(', ') || 'no tables'}`;
}
