import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { REJECTS_FILE, type RejectRecord } from '../../src/delivery/rejectLog.js';
import { Metrics } from '../../src/ops/metrics.js';
import { loggerInto } from '../support/logLines.js';
import type { Pipeline } from '../support/pipeline.js';

export interface RunningDaemon {
  daemon: Daemon;
  /** Its log lines, parsed, oldest first. */
  logs: Record<string, unknown>[];
  /** Whether `done` has settled: a daemon that keeps running has not. */
  stopped(): boolean;
}

/**
 * An in-process daemon on the pipeline's database and simulator, with `edit` applied to the pipeline's YAML
 * first (the pipeline's own `start()` cannot change `verbose.*` keys). Stopped by the caller.
 */
export async function startDaemon(
  p: Pipeline,
  edit: (yaml: string) => string = (y) => y,
): Promise<RunningDaemon> {
  const logs: Record<string, unknown>[] = [];
  const log = loggerInto(logs);
  const { config } = parseConfig(edit(p.yaml()), 'test.yaml', {});
  const daemon = new Daemon(config, {
    fullResync: false,
    dryRun: false,
    log,
    metrics: new Metrics({ defaults: false }),
  });
  let settled = false;
  daemon.done.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await daemon.start();
  return { daemon, logs, stopped: () => settled };
}

/** `state_dir/rejects.jsonl`, parsed; [] when nothing was rejected. */
export async function readRejects(stateDir: string): Promise<RejectRecord[]> {
  let text: string;
  try {
    text = await readFile(join(stateDir, REJECTS_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RejectRecord);
}
