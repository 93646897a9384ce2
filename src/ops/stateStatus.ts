import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_FILE } from '../delivery/checkpointStore.js';
import { RejectLog, type RejectRecord, type RejectStage, rejectedRows } from '../delivery/rejectLog.js';
import { errorMessage } from '../errors.js';
import { parseLsn } from '../lsn.js';
import { ProgressStore, type ResyncProgress } from '../resync/progressStore.js';

/** A part of the state that could be read (`value`, undefined when there is none yet) or why it could not. */
export type Readout<T> = { value: T | undefined } | { problem: string };

export interface CheckpointStatus {
  slot: string;
  lsn: string;
  updatedAt: string;
  /** Seconds since the file was last written. */
  ageSeconds: number;
}

export interface RejectsStatus {
  total: number;
  byStage: Record<RejectStage, number>;
  /** The newest few, newest first. */
  newest: RejectRecord[];
}

/** What `verbose-sync status` reads from state_dir. */
export interface StateStatus {
  stateDir: string;
  checkpoint: Readout<CheckpointStatus>;
  rejects: Readout<RejectsStatus>;
  resync: Readout<ResyncProgress>;
}

/**
 * Reads state_dir without changing anything in it (no directory is created), so it is safe beside a running
 * daemon: every file there is replaced atomically or appended to, and a torn last reject line is skipped.
 */
export async function readStateStatus(options: {
  stateDir: string;
  slot: string;
  now: number;
  newestRejects?: number;
}): Promise<StateStatus> {
  const { stateDir } = options;
  const [checkpoint, rejects, resync] = await Promise.all([
    readout(() => readCheckpoint(stateDir, options.slot, options.now)),
    readout(async () => summariseRejects(await new RejectLog({ stateDir, now: Date.now }).list(), options)),
    readout(() => new ProgressStore(stateDir).load()),
  ]);
  return { stateDir, checkpoint, rejects, resync };
}

async function readout<T>(read: () => Promise<T | undefined>): Promise<Readout<T>> {
  try {
    return { value: await read() };
  } catch (error) {
    return { problem: errorMessage(error) };
  }
}

async function readCheckpoint(stateDir: string, slot: string, now: number) {
  const file = join(stateDir, CHECKPOINT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  let data: Partial<Record<'slot' | 'lsn' | 'updatedAt', unknown>>;
  try {
    data = JSON.parse(text) as typeof data;
  } catch {
    throw new Error(
      `${file} is not valid JSON; the daemon will refuse to start until it is restored or removed`,
    );
  }
  if (typeof data.lsn !== 'string' || typeof data.updatedAt !== 'string' || typeof data.slot !== 'string') {
    throw new Error(`${file} lacks "lsn", "slot" or "updatedAt"; the daemon will refuse to start with it`);
  }
  parseLsn(data.lsn);
  if (data.slot !== slot) {
    throw new Error(
      `${file} belongs to slot "${data.slot}", not to source.slot "${slot}": state_dir is another deployment's`,
    );
  }
  const ageSeconds = Math.max(0, (now - Date.parse(data.updatedAt)) / 1000);
  return { slot: data.slot, lsn: data.lsn, updatedAt: data.updatedAt, ageSeconds };
}

function summariseRejects(records: RejectRecord[], options: { newestRejects?: number }): RejectsStatus {
  // Counted by row, as `verbose-sync rejects` lists them: a row rejected at every save is one row to fix.
  const latest = rejectedRows(records)
    .map((row) => row.latest)
    .sort((a, b) => a.time.localeCompare(b.time));
  const byStage: Record<RejectStage, number> = { mapping: 0, api: 0 };
  for (const record of latest) byStage[record.stage] += 1;
  return {
    total: latest.length,
    byStage,
    newest: latest.slice(-(options.newestRejects ?? 5)).reverse(),
  };
}
