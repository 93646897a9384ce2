import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileError, syncDirectory, writeFileAtomic } from './stateFiles.js';

export const FIRST_START_FILE = 'first-start.pending';

/**
 * `state_dir/first-start.pending`: a first start's promise to load every existing row, written before the
 * replication slot is created and removed once the full resync that loads them is recorded.
 *
 * A new slot starts at the end of the WAL, so rows that exist before it are only ever read by that resync. A
 * crash between creating the slot and recording the resync would otherwise leave a slot, no checkpoint and no
 * resync to resume, and the next start would stream only what changes from then on: those rows would never
 * reach Verbose.
 */
export class FirstStartMarker {
  readonly file: string;

  constructor(private readonly stateDir: string) {
    this.file = join(stateDir, FIRST_START_FILE);
  }

  async exists(): Promise<boolean> {
    try {
      await access(this.file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw fileError(error, 'read', this.file);
    }
  }

  async write(): Promise<void> {
    await writeFileAtomic(
      this.file,
      'verbose-sync created its replication slot here and has not yet recorded the full resync that loads the existing rows.\n',
      'record the first start in',
    );
  }

  async remove(): Promise<void> {
    try {
      await rm(this.file, { force: true });
      await syncDirectory(this.stateDir);
    } catch (error) {
      throw fileError(error, 'remove', this.file);
    }
  }
}
