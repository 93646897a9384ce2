import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lsn } from '../domain.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { ensureStateDir, fileError, StateFileError, writeFileAtomic } from '../stateFiles.js';
import type { Now, Sleep } from './clock.js';

export const CHECKPOINT_FILE = 'checkpoint.json';
const VERSION = 1;

/** The content of `state_dir/checkpoint.json`. */
export interface CheckpointFile {
  version: 1;
  slot: string;
  /** `X/Y`, as PostgreSQL writes it. */
  lsn: string;
  updatedAt: string;
}

export interface CheckpointStoreOptions {
  stateDir: string;
  /** The replication slot the position belongs to; a file written for another slot is refused. */
  slot: string;
  now: Now;
  sleep: Sleep;
  /** At most one write per this many ms while the position moves (default 250); `flush()` writes at once. */
  throttleMs?: number;
  /** A write failed: the position can no longer be persisted, which the daemon should treat as fatal. */
  onError?: (error: StateFileError) => void;
}

/**
 * The acknowledged position on disk, so that a restart resumes where delivery really got to. Writes are
 * atomic (never a half-written file) and throttled; `flush()` writes the latest position before shutdown.
 */
export class CheckpointStore {
  readonly file: string;
  private wanted: Lsn | undefined;
  private written: Lsn | undefined;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private writer: Promise<void> | undefined;
  private writing = false;
  private hurry = new AbortController();
  private failure: StateFileError | undefined;
  private dirReady = false;

  constructor(private readonly options: CheckpointStoreOptions) {
    this.file = join(options.stateDir, CHECKPOINT_FILE);
  }

  /**
   * Creates the state directory when missing and reads the saved position: undefined when there is none yet
   * (a first start). A file that cannot be read or understood is an error, never a silent fresh start.
   */
  async load(): Promise<Lsn | undefined> {
    await ensureStateDir(this.options.stateDir);
    this.dirReady = true;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fileError(error, 'read the checkpoint', this.file);
    }
    const saved = this.parse(text);
    this.written = saved;
    return saved;
  }

  /** Persists `lsn` soon (throttled). Lower or equal positions are ignored: the checkpoint only moves forward. */
  save(lsn: Lsn): void {
    if (this.failure || (this.wanted !== undefined && lsn <= this.wanted)) return;
    this.wanted = lsn;
    if (this.writing) return;
    this.writing = true;
    this.writer = this.writeLoop().catch((error: unknown) => {
      this.writing = false;
      this.failure = fileError(error, 'write the checkpoint', this.file);
      this.options.onError?.(this.failure);
    });
  }

  /** Writes the latest saved position now and waits for it; rejects when it cannot be written. */
  async flush(): Promise<void> {
    this.hurry.abort();
    while (this.writing) await this.writer;
    this.hurry = new AbortController();
    if (this.failure) throw this.failure;
  }

  private async writeLoop(): Promise<void> {
    if (!this.dirReady) {
      await ensureStateDir(this.options.stateDir);
      this.dirReady = true;
    }
    while (this.wanted !== undefined && this.wanted !== this.written) {
      const wait = this.lastWriteAt + (this.options.throttleMs ?? 250) - this.options.now();
      if (wait > 0) await this.options.sleep(wait, this.hurry.signal);
      const lsn = this.wanted;
      const content: CheckpointFile = {
        version: VERSION,
        slot: this.options.slot,
        lsn: formatLsn(lsn),
        updatedAt: new Date(this.options.now()).toISOString(),
      };
      await writeFileAtomic(this.file, `${JSON.stringify(content, null, 2)}\n`, 'write the checkpoint');
      this.written = lsn;
      this.lastWriteAt = this.options.now();
    }
    // Cleared synchronously with the loop's last check, so a save() from now on starts a new loop.
    this.writing = false;
  }

  private parse(text: string): Lsn {
    const unusable = (why: string): StateFileError =>
      new StateFileError(
        `The checkpoint file ${this.file} is unusable: ${why}. verbose-sync will not guess where to resume. ` +
          "Restore the file from a backup, or delete it to resume from the replication slot's own confirmed " +
          'position (safe when the slot was never advanced by anything but this daemon).',
      );
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw unusable(`it is not valid JSON (${(error as Error).message})`);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw unusable('it is not a JSON object');
    const { version, slot, lsn } = data as Record<string, unknown>;
    if (version !== VERSION)
      throw unusable(`unknown version ${JSON.stringify(version)} (expected ${VERSION})`);
    if (typeof lsn !== 'string') throw unusable('"lsn" is missing');
    let parsed: Lsn;
    try {
      parsed = parseLsn(lsn);
    } catch {
      throw unusable(`"lsn" is ${JSON.stringify(lsn)}, not a position such as "0/16B3748"`);
    }
    if (slot !== this.options.slot) {
      throw new StateFileError(
        `The checkpoint file ${this.file} belongs to slot ${JSON.stringify(slot)}, but source.slot is ` +
          `${JSON.stringify(this.options.slot)}. Point state_dir at that slot's own directory, or delete the ` +
          "file to start from the slot's confirmed position.",
      );
    }
    return parsed;
  }
}
