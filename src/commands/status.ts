import type { LoadedConfig } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { scrubber } from '../log.js';
import { readSourceStatus } from '../ops/sourceStatus.js';
import { readStateStatus } from '../ops/stateStatus.js';
import { formatStatus, type StatusReport } from '../ops/statusReport.js';

/**
 * `verbose-sync status`: the slot (active, wal_status, lag), the checkpoint and its age, rejected contacts and
 * the full resync's progress. Reads only, so it can run beside the daemon. Exit 0 when it could report, 1 when
 * the database could not be reached (the state_dir part is printed all the same).
 */
export async function runStatus(loaded: LoadedConfig, options: { json: boolean }): Promise<number> {
  const { config } = loaded;
  const scrub = scrubber(loaded.secrets);
  const [source, state] = await Promise.all([
    readSourceStatus({
      url: config.source.url,
      slot: config.source.slot,
      publication: config.source.publication,
    }).then(
      (status) => ({ status }),
      (error: unknown) => ({ error: errorMessage(error) }),
    ),
    readStateStatus({ stateDir: config.state_dir, slot: config.source.slot, now: Date.now() }),
  ]);
  const report: StatusReport = {
    config: loaded.file,
    slot: config.source.slot,
    publication: config.source.publication,
    source,
    state,
  };
  const text = options.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report);
  process.stdout.write(scrub(text));
  return 'error' in source ? 1 : 0;
}
