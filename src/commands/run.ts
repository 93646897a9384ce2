import type { LoadedConfig } from '../config/load.js';
import { Daemon, StartInterrupted } from '../daemon.js';
import { errorMessage } from '../errors.js';
import { createLogger, scrubber } from '../log.js';
import { heapShortfall } from '../ops/heapRoom.js';
import { Metrics } from '../ops/metrics.js';
import { startOpsServer } from '../ops/opsServer.js';
import type { ShutdownHook } from './shutdown.js';

export interface RunFlags {
  fullResync: boolean;
  dryRun: boolean;
}

/** `verbose-sync run`: the daemon, until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1). */
export async function runDaemon(
  loaded: LoadedConfig,
  flags: RunFlags,
  onShutdown: ShutdownHook,
): Promise<number> {
  const log = createLogger({ secrets: loaded.secrets });
  const scrub = scrubber(loaded.secrets);
  const metrics = new Metrics();
  const daemon = new Daemon(loaded.config, {
    ...flags,
    log,
    metrics,
    printRequest: ({ target, contacts }) =>
      process.stdout.write(`${JSON.stringify({ dry_run: true, ...target, contacts })}\n`),
  });
  const ops = await startOpsServer({
    host: loaded.config.http.host,
    port: loaded.config.http.port,
    metrics,
    health: () => daemon.health(),
    readiness: () => daemon.readiness(),
  });
  log.info({ config: loaded.file, ops: ops.url }, 'verbose-sync starting');
  const shortfall = heapShortfall(loaded.config.max_pending_contacts);
  if (shortfall) {
    log.warn(
      { max_pending_contacts: loaded.config.max_pending_contacts, ...shortfall },
      `the heap limit (${shortfall.limitMb} MB) is small for max_pending_contacts ` +
        `${loaded.config.max_pending_contacts}, which can hold about ${shortfall.liveMb} MB: raise ` +
        `--max-old-space-size in NODE_OPTIONS by ${shortfall.neededMb - shortfall.limitMb} MB or more, or lower ` +
        'max_pending_contacts',
    );
  }

  onShutdown(async (signal) => {
    log.info(
      { signal },
      'shutting down: finishing requests in flight, then acknowledging what was delivered',
    );
    await daemon.stop();
  });
  let started = false;
  try {
    await daemon.start();
    started = true;
    await daemon.done;
    return 0;
  } catch (error) {
    if (error instanceof StartInterrupted) {
      await daemon.done;
      return 0;
    }
    const message = scrub(errorMessage(error));
    // A fatal error after start was logged by the daemon as it stopped; one from start() was not.
    if (!started) log.fatal({ kind: error instanceof Error ? error.name : 'Error' }, message);
    await daemon.stop().catch(() => {});
    process.stderr.write(`verbose-sync: ${message}\n`);
    return 1;
  } finally {
    await ops.close();
    await new Promise<void>((resolve) => log.flush(() => resolve()));
  }
}
