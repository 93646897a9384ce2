import { createWriteStream } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { systemSleep } from '../delivery/clock.js';
import { RejectLog } from '../delivery/rejectLog.js';
import { DeliveryWatch } from '../demo/deliveryWatch.js';
import { demoConfigYaml } from '../demo/demoConfig.js';
import { startDemoPostgres } from '../demo/demoPostgres.js';
import { LiveChanges } from '../demo/liveChanges.js';
import { PeopleFactory, Random } from '../demo/people.js';
import { loadSampleCrm } from '../demo/sampleCrm.js';
import { styleFor } from '../demo/style.js';
import { formatSummary } from '../demo/summary.js';
import { createLogger } from '../log.js';
import { Metrics } from '../ops/metrics.js';
import { startOpsServer } from '../ops/opsServer.js';
import { formatCount } from '../ops/units.js';
import { startSimulator } from '../simulator/simulator.js';
import type { ShutdownHook } from './shutdown.js';

const PEOPLE = 300;
const API_KEY = 'as_demo_key_0123456789';
const LIST = 'Demo contacts';
/** Between two live changes; the daemon sends within its flush interval (300 ms), so each shows on its own. */
const CHANGE_EVERY_MS = 1_500;
const LOOK_EVERY_MS = 250;

/**
 * `verbose-sync demo`: an embedded PostgreSQL with a sample CRM, the Verbose simulator and the daemon, all in
 * a temporary directory; shows the first-start resync, then makes live changes and shows them reach Verbose,
 * until Ctrl-C, then a summary. The daemon's JSON logs go to a file there, not to the terminal.
 */
export async function runDemo(onShutdown: ShutdownHook): Promise<number> {
  const style = styleFor(process.stdout);
  const say = (line = '') => process.stdout.write(`${line}\n`);
  const stop = new AbortController();
  onShutdown(async () => {
    if (stop.signal.aborted) return;
    say();
    say(style.dim('Stopping: finishing requests in flight, then acknowledging what was delivered…'));
    stop.abort();
  });
  const cleanups: { name: string; run: () => Promise<unknown> }[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'verbose-sync-demo-'));
  // The embedded server runs as the `postgres` user when we are root: it must get through to its directory.
  await chmod(dir, 0o711);
  const logFile = join(dir, 'daemon.log');
  const stateDir = join(dir, 'state');
  let failure: Error | undefined;

  /** Everything up to Ctrl-C; returns the summary, or undefined when stopped before the live part. */
  const play = async (): Promise<string[] | undefined> => {
    say(
      style.bold('verbose-sync demo') +
        ' — a sample CRM in PostgreSQL, the Verbose simulator, and the daemon',
    );
    say(style.dim(`everything lives in ${dir}`));
    say();

    const postgresLog = createWriteStream(join(dir, 'postgres.log'));
    cleanups.push({ name: 'PostgreSQL log', run: () => new Promise((done) => postgresLog.end(done)) });
    process.stdout.write('  starting PostgreSQL (embedded, wal_level=logical)… ');
    const postgresDir = join(dir, 'postgres');
    const server = await startDemoPostgres(postgresDir, (line) => postgresLog.write(line));
    cleanups.push({
      name: 'PostgreSQL',
      run: async () => {
        // Ctrl-C in a terminal reaches the server too, which then stops by itself and never says so.
        await raceTimeout(server.stop(), 5_000);
        await rm(postgresDir, { recursive: true, force: true });
      },
    });
    say(`ready on port ${server.port}`);
    if (stop.signal.aborted) return undefined;

    await server.createDatabase('crm');
    const databaseUrl = server.url('crm');
    const sql = new pg.Client({ connectionString: databaseUrl, application_name: 'verbose-sync demo' });
    sql.on('error', () => {});
    await sql.connect();
    cleanups.push({ name: 'CRM connection', run: () => sql.end() });
    const random = new Random(42);
    const factory = new PeopleFactory(random);
    const crm = await loadSampleCrm(sql, PEOPLE, factory);
    const { rows } = await sql.query<{ count: string }>('SELECT count(*) FROM res_partner');
    const initialRows = Number(rows[0]!.count);
    say(
      `  sample CRM: ${formatCount(initialRows)} partners in res_partner — ${crm.people} people ` +
        `(${crm.invalidPhones} with phones that cannot be numbers), ${crm.companies} companies, ` +
        `${crm.archived} archived`,
    );

    const simulator = await startSimulator({
      apiKey: API_KEY,
      workspace: { id: 'ws_demo', name: 'Demo workspace' },
    });
    cleanups.push({ name: 'Verbose simulator', run: () => simulator.close() });
    say(`  Verbose simulator on ${simulator.url}`);

    const configFile = join(dir, 'sync.yaml');
    await writeFile(
      configFile,
      demoConfigYaml({ databaseUrl, verboseUrl: simulator.url, apiKey: API_KEY, stateDir }),
    );
    const loaded = loadConfig(configFile, {});
    const destination = pino.destination({ dest: logFile, sync: false });
    const log = createLogger({ secrets: loaded.secrets, destination });
    cleanups.push({ name: 'daemon log', run: () => new Promise<void>((done) => log.flush(() => done())) });
    const metrics = new Metrics();
    const daemon = new Daemon(loaded.config, { fullResync: false, dryRun: false, log, metrics });
    const ops = await startOpsServer({
      host: loaded.config.http.host,
      port: loaded.config.http.port,
      metrics,
      health: () => daemon.health(),
      readiness: () => daemon.readiness(),
    });
    cleanups.push({ name: 'ops server', run: () => ops.close() });
    cleanups.push({ name: 'daemon', run: () => daemon.stop() });
    daemon.done.catch((error: unknown) => {
      failure = error instanceof Error ? error : new Error(String(error));
      stop.abort();
    });
    say(`  daemon: config ${configFile}`);
    say(`          logs   ${logFile} ${style.dim('(JSON, one line per event)')}`);
    say();

    say(
      style.bold('First start') + ': no slot and no checkpoint yet, so the daemon loads every existing row.',
    );
    const started = Date.now();
    await daemon.start();
    while (daemon.resyncRunning && !stop.signal.aborted) await systemSleep(100, stop.signal);
    await Promise.race([daemon.idle().catch(() => {}), aborted(stop.signal)]);
    if (stop.signal.aborted) return undefined;
    const rejectLog = new RejectLog({ stateDir, now: Date.now });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    say(
      `  ${style.green('✓')} ${formatCount(simulator.store.size)} contacts in Verbose after ${seconds} s; ` +
        `${(await rejectLog.list()).length} rows set aside with their reasons (phones that are not numbers); ` +
        'companies and archived partners are not mapped',
    );
    say();

    say(style.bold('Where to look') + ' (while the demo runs):');
    say(`  metrics          ${style.cyan(`${ops.url}/metrics`)}`);
    say(`  probes           ${style.cyan(`${ops.url}/healthz`)}  ${style.cyan(`${ops.url}/readyz`)}`);
    say(`  Verbose state    ${style.cyan(`${simulator.url}/_simulator/state`)}`);
    say(`  state dir        ${stateDir} (checkpoint.json, rejects.jsonl)`);
    say(`  daemon logs      ${logFile}`);
    say(`  status           node dist/cli.js status --config ${configFile}`);
    say();

    const watch = new DeliveryWatch(simulator.store);
    watch.catchUp();
    const changes = new LiveChanges({
      sql,
      factory,
      random,
      crm,
      say: (line) => say(`  ${style.yellow('CRM:')}       ${line}`),
    });
    say(
      style.bold('Now making live changes') +
        ` in the CRM every ${CHANGE_EVERY_MS / 1000} s (Ctrl-C to stop):`,
    );
    while (!stop.signal.aborted) {
      try {
        await changes.next();
      } catch (error) {
        // Ctrl-C in a terminal reaches the server too, which may drop our connection a moment before the
        // signal reaches us: give it that moment before calling this a failure.
        await systemSleep(1_000, stop.signal);
        if (stop.signal.aborted) break;
        throw error;
      }
      for (let waited = 0; waited < CHANGE_EVERY_MS && !stop.signal.aborted; waited += LOOK_EVERY_MS) {
        await systemSleep(LOOK_EVERY_MS, stop.signal);
        for (const line of watch.poll()) say(`  ${style.green('→ Verbose:')} ${line}`);
      }
    }

    await daemon.stop();
    return formatSummary({
      rows: initialRows + changes.inserted,
      liveChanges: changes.made,
      contacts: simulator.store.size,
      list: LIST,
      requests: simulator.requests.stats(),
      rejects: await rejectLog.list(),
      rejectsFile: rejectLog.file,
      dir,
    });
  };

  let summary: string[] | undefined;
  try {
    summary = await play();
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup.run().catch((error: unknown) => {
        if (!stop.signal.aborted) say(`  (closing the ${cleanup.name} failed: ${String(error)})`);
      });
    }
  }

  if (failure) {
    say();
    say(`The daemon stopped on an error: ${failure.message}`);
    say(`Its log: ${logFile}`);
    return 1;
  }
  if (summary) {
    say();
    say(style.bold('Summary'));
    for (const line of summary) say(line);
  }
  return 0;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

async function raceTimeout(work: Promise<void>, ms: number): Promise<void> {
  const timer = new AbortController();
  await Promise.race([work, systemSleep(ms, timer.signal)]);
  timer.abort();
}
