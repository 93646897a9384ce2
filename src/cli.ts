#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ShutdownHook } from './commands/shutdown.js';
import { ConfigError, configPath, type LoadedConfig, loadConfig } from './config/load.js';
import { errorMessage } from './errors.js';
import { scrubber } from './log.js';
import { SIMULATOR_USAGE, SimulatorArgsError } from './simulator/options.js';

/**
 * The command line: the only place that reads argv, installs signal handlers or calls process.exit.
 * Exit codes: 0 clean shutdown, 2 invalid config or usage, 1 any other fatal error.
 */

const USAGE = `verbose-sync — keeps Verbose contacts equal to the people in a PostgreSQL CRM.

Usage:
  verbose-sync [run] [--config PATH] [--full-resync] [--dry-run]
  verbose-sync validate [--config PATH]   check config, database and API key; preview mapped contacts
  verbose-sync status [--config PATH] [--json]   slot lag, checkpoint age, rejects, resync progress
  verbose-sync rejects [--config PATH] [--retry]   list rejected contacts; send them again once fixed
  verbose-sync simulator [--port N] [--api-key KEY] [fault options]   a local Verbose stand-in
  verbose-sync demo                       embedded PostgreSQL + simulator + example config
  verbose-sync --help | --version

Options:
  --config PATH    the configuration file (else $VERBOSE_SYNC_CONFIG, else ./sync.yaml)
  --full-resync    load every existing row of the mapped tables, then keep streaming
  --dry-run        run the pipeline but print the requests instead of sending them; acknowledge nothing
  --retry          with rejects: read the rejected rows again and send those that are now valid
  --json           with status: print the report as JSON

Environment: LOG_LEVEL (info), VERBOSE_SYNC_CONFIG.
Docs: README.md; every config key is explained in sync.example.yaml.`;

export class UsageError extends Error {}

type Command = 'run' | 'validate' | 'status' | 'rejects' | 'simulator' | 'demo';
const COMMANDS: readonly Command[] = ['run', 'validate', 'status', 'rejects', 'simulator', 'demo'];

const OPTIONS = {
  config: { type: 'string' },
  'full-resync': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  retry: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Which options each command takes; anything else is a usage error rather than silently ignored. */
const ALLOWED: Record<Command, readonly (keyof typeof OPTIONS)[]> = {
  run: ['config', 'full-resync', 'dry-run'],
  validate: ['config'],
  status: ['config', 'json'],
  rejects: ['config', 'retry'],
  simulator: [],
  demo: [],
};

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  const command: Command = COMMANDS.includes(first as Command) ? (first as Command) : 'run';
  const rest = command === first ? argv.slice(1) : argv;
  stopsGracefully = command === 'run' || command === 'simulator' || command === 'demo';

  if (command === 'simulator') {
    if (rest.includes('--help') || rest.includes('-h')) return print(SIMULATOR_USAGE);
    const { runSimulator } = await import('./commands/simulator.js');
    return runSimulator(rest, onShutdown);
  }

  const { values, positionals } = parseArgs({
    args: rest,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return print(USAGE);
  if (values.version) return print(version());
  if (positionals.length > 0) {
    throw new UsageError(
      `unknown command ${JSON.stringify(positionals[0])}; expected one of ${COMMANDS.join(', ')}`,
    );
  }
  for (const option of Object.keys(values) as (keyof typeof OPTIONS)[]) {
    if (!ALLOWED[command].includes(option)) throw new UsageError(`--${option} does not apply to ${command}`);
  }

  const load = (): LoadedConfig => {
    const loaded = loadConfig(configPath(values.config));
    scrub = scrubber(loaded.secrets);
    return loaded;
  };
  switch (command) {
    case 'run': {
      const { runDaemon } = await import('./commands/run.js');
      return runDaemon(
        load(),
        { fullResync: values['full-resync'] ?? false, dryRun: values['dry-run'] ?? false },
        onShutdown,
      );
    }
    case 'validate': {
      const { runValidate } = await import('./commands/validate.js');
      return runValidate(load());
    }
    case 'status': {
      const { runStatus } = await import('./commands/status.js');
      return runStatus(load(), { json: values.json ?? false });
    }
    case 'rejects': {
      const { runRejects } = await import('./commands/rejects.js');
      return runRejects(load(), { retry: values.retry ?? false });
    }
    case 'demo': {
      const { runDemo } = await import('./commands/demo.js');
      return runDemo(onShutdown);
    }
  }
}

/**
 * Signals are handled from the first moment, so one that arrives while a command starts up is not lost: the
 * first SIGTERM/SIGINT calls the command's stop (at once, or as soon as the command hands it over with
 * `onShutdown`); a second one exits at once (the operator means it). Commands that never hand over a stop
 * (validate, status…) are simply ended.
 */
/** Removes the loaded config's secrets from anything printed here, whatever a command let through. */
let scrub = (text: string) => text;
let signalled: NodeJS.Signals | undefined;
let stopCommand: ((signal: NodeJS.Signals) => Promise<void>) | undefined;
let stopsGracefully = false;

function stopNow(signal: NodeJS.Signals): void {
  stopCommand?.(signal).catch((error: unknown) => {
    process.stderr.write(scrub(`shutdown failed: ${errorMessage(error)}\n`));
    process.exit(1);
  });
}

function onSignal(signal: NodeJS.Signals): void {
  if (signalled || !stopsGracefully) {
    if (signalled) process.stderr.write(`received ${signal} again: exiting now\n`);
    process.exit(signalled ? 1 : 128 + (signal === 'SIGINT' ? 2 : 15));
  }
  signalled = signal;
  stopNow(signal);
}
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

const onShutdown: ShutdownHook = (stop) => {
  stopCommand = stop;
  if (signalled) stopNow(signalled);
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `verbose-sync ${pkg.version}`;
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  // Exit explicitly: a command has closed what it opened, and stdout/stderr are synchronous for files and pipes.
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`invalid configuration:\n${error.message}\n`);
      process.exit(2);
    }
    // node:util parseArgs throws errors with ERR_PARSE_ARGS_* codes for unknown or malformed options.
    const usage = error instanceof UsageError || error instanceof SimulatorArgsError;
    if (usage || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\nRun verbose-sync --help for usage.\n`);
      process.exit(2);
    }
    process.stderr.write(scrub(`verbose-sync: ${errorMessage(error)}\n`));
    process.exit(1);
  },
);
