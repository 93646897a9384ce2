import { type FileHandle, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import type { ContactFields, JsonValue, ListTarget, Rejection } from '../domain.js';
import { errorMessage } from '../errors.js';
import { RecentMap } from '../recentMap.js';
import { ensureStateDir, fileError, StateFileError, writeFileAtomic } from '../stateFiles.js';
import type { Now } from './clock.js';

export const REJECTS_FILE = 'rejects.jsonl';

/** Where a contact was set aside: by the mapping (never sent) or by the API (400 on that one contact). */
export type RejectStage = 'mapping' | 'api';

/** One line of `state_dir/rejects.jsonl`. */
export interface RejectRecord {
  /** ISO 8601. */
  time: string;
  stage: RejectStage;
  table: string;
  /** The row's key columns and values. */
  key: Record<string, JsonValue>;
  /** The phone as written in the CRM, before normalisation. */
  phone: string;
  reason: string;
  /** What would have been sent, when there was something (API rejects). */
  contact?: { target: ListTarget; phone: string; fields: ContactFields };
}

/** One row's rejects: its latest record and how many lines it has. */
export interface RejectedRow {
  latest: RejectRecord;
  lines: number;
}

/**
 * Each rejected row once, with its latest record (the file is in time order) and how many lines it has: a row
 * gets a line each time its reject says something new, and again after a restart for changes not yet
 * acknowledged.
 */
export function rejectedRows(records: RejectRecord[]): RejectedRow[] {
  const rows = new Map<string, RejectedRow>();
  for (const record of records) {
    const id = rowId(record);
    rows.set(id, { latest: record, lines: (rows.get(id)?.lines ?? 0) + 1 });
  }
  return [...rows.values()];
}

/** The row a record is about: its table and key, whatever the order of the key's columns. */
function rowId(record: RejectRecord): string {
  const columns = Object.keys(record.key).sort();
  return JSON.stringify([record.table, columns, columns.map((column) => record.key[column])]);
}

/** What makes a reject worth a new line: where, with which phone and why. */
function verdict(record: RejectRecord): string {
  return JSON.stringify([record.stage, record.phone, record.reason]);
}

/** What delivery needs of the reject log. */
export interface RejectSink {
  /**
   * Resolves once the reject is durable (only then may the checkpoint pass its change): true when it was
   * written, false when it repeats what the file already says of that row.
   */
  append(rejection: Rejection, stage: RejectStage): Promise<boolean>;
}

export interface RejectLogOptions {
  stateDir: string;
  now: Now;
  /**
   * Writes nothing when a reject repeats the latest one of its row (same stage, phone and reason): a CRM row
   * with a bad phone is rejected at every save, and automation saves some rows every few minutes. Off for
   * `rejects --retry`, which removes the old lines once it has written their rows' current rejects.
   */
  collapseRepeats?: boolean;
}

/** Rows whose latest reject is remembered to collapse repeats; a repeat of an older one is written again. */
const REMEMBERED_ROWS = 10_000;

/**
 * Between processes (the daemon appending, `rejects --retry` rewriting): `rejects.jsonl.lock`. An append that
 * went to the file a rewrite was replacing would be lost, though its change was acknowledged. A lock left by a
 * process that died is taken over once it is `stale` (its owner refreshes it while it lives).
 */
const LOCK: lockfile.LockOptions = {
  realpath: false,
  stale: 10_000,
  retries: { retries: 40, factor: 1.3, minTimeout: 10, maxTimeout: 1_000 },
  // Refreshing failed (the lock was taken over after a stall longer than `stale`): the critical section has
  // long finished or is about to, and the default handler would throw from a timer and kill the daemon.
  onCompromised: () => {},
};

/**
 * Contacts that could not be sent, with their reasons, one JSON line each, for `verbose-sync rejects`.
 * Appends are fsynced before they resolve. Appends and rewrites (`remove`) are serialised, within the process
 * and across processes (LOCK), so a rewrite never loses an append. A last line without its newline is a crash
 * mid-append: that append never resolved, so its change was not acknowledged and will be rejected again.
 * Reading ignores it and the next append cuts it off.
 */
export class RejectLog implements RejectSink {
  readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();
  private checkedTail = false;
  /** The latest verdict of each recently rejected row, as the file holds it (see `collapseRepeats`). */
  private readonly latest = new RecentMap<string, string>(REMEMBERED_ROWS);
  /** The file as this process left it (see `fingerprint`): another process changed it if it differs. */
  private leftAs: string | undefined;

  constructor(private readonly options: RejectLogOptions) {
    this.file = join(options.stateDir, REJECTS_FILE);
  }

  append(rejection: Rejection, stage: RejectStage): Promise<boolean> {
    const record = toRecord(rejection, stage, this.options.now());
    return this.exclusively(async () => {
      try {
        const handle = await open(this.file, 'a+');
        try {
          const stat = await handle.stat();
          const found = fingerprint(stat);
          const changedElsewhere = this.leftAs !== found;
          // Another process (a crashed `rejects --retry`, a person) may have left a torn last line.
          if (changedElsewhere) this.checkedTail = false;
          const reload = changedElsewhere ? stat.size : undefined;
          if (this.options.collapseRepeats && (await this.repeats(record, handle, reload))) {
            this.leftAs = found;
            return false;
          }
          if (!this.checkedTail) await dropTornLine(handle, stat.size);
          await handle.appendFile(`${JSON.stringify(record)}\n`, 'utf8');
          await handle.datasync();
          this.checkedTail = true;
          this.latest.set(rowId(record), verdict(record));
          this.leftAs = fingerprint(await handle.stat());
          return true;
        } finally {
          await handle.close();
        }
      } catch (error) {
        this.leftAs = undefined;
        throw fileError(error, 'append to', this.file);
      }
    });
  }

  /**
   * Holds `rejects.jsonl.retry.lock` while `body` runs (`rejects --retry`): meanwhile the daemon writes every
   * reject, as a line it would have relied on may be one the retry removes. (proper-lockfile keeps one lock per
   * path in a process, so this lock is on another path than the file's own.)
   */
  async whileRetrying<T>(body: () => Promise<T>): Promise<T> {
    await ensureStateDir(this.options.stateDir);
    const release = await lockfile.lock(`${this.file}.retry`, LOCK).catch((error: unknown) => {
      throw new StateFileError(
        `another verbose-sync rejects --retry is running on ${this.options.stateDir} ` +
          `(${this.file}.retry.lock is held: ${errorMessage(error)}); ` +
          'wait for it to finish',
      );
    });
    try {
      return await body();
    } finally {
      await release().catch(() => {});
    }
  }

  /** True when the file's latest reject of the row says just what `record` says. */
  /** `reloadSize`: the file changed elsewhere (or this is the first append) and is this long. */
  private async repeats(record: RejectRecord, handle: FileHandle, reloadSize?: number): Promise<boolean> {
    const retrying = await lockfile.check(`${this.file}.retry`, LOCK);
    if (retrying) return false;
    if (reloadSize !== undefined) {
      // First append, or the file was changed by another process: learn what it says now.
      this.latest.clear();
      for (const old of await recentRecords(handle, reloadSize)) this.latest.set(rowId(old), verdict(old));
    }
    return this.latest.get(rowId(record)) === verdict(record);
  }

  /** Every reject, oldest first; [] when there are none. A corrupt line is an error naming it. */
  list(): Promise<RejectRecord[]> {
    return this.serially(() => this.read());
  }

  /**
   * Removes the rejects `predicate` selects (for `rejects --retry`) by rewriting the file atomically; returns
   * the removed ones.
   */
  remove(predicate: (record: RejectRecord) => boolean): Promise<RejectRecord[]> {
    return this.exclusively(async () => {
      const records = await this.read();
      const removed = records.filter(predicate);
      if (removed.length === 0) return removed;
      const kept = records.filter((record) => !removed.includes(record));
      await writeFileAtomic(
        this.file,
        kept.map((record) => `${JSON.stringify(record)}\n`).join(''),
        'rewrite',
      );
      this.checkedTail = true;
      return removed;
    });
  }

  private async read(): Promise<RejectRecord[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw fileError(error, 'read', this.file);
    }
    const lines = text.split('\n');
    // The part after the last newline is either empty or a torn append (see the class comment).
    lines.pop();
    const records: RejectRecord[] = [];
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      const record = parseRecord(line);
      if (!record) {
        throw new StateFileError(
          `${this.file} line ${index + 1} is not a reject record: ${line.slice(0, 120)}. ` +
            'Fix or delete that line (each line is one JSON object).',
        );
      }
      records.push(record);
    });
    return records;
  }

  /** Serially, holding the lock shared with other processes. */
  private exclusively<T>(operation: () => Promise<T>): Promise<T> {
    return this.serially(async () => {
      await ensureStateDir(this.options.stateDir);
      let release: () => Promise<void>;
      try {
        release = await lockfile.lock(this.file, LOCK);
      } catch (error) {
        throw new StateFileError(
          `${this.file} is being written by another process (${this.file}.lock has been held for too long): ` +
            `${errorMessage(error)}. If no verbose-sync runs on this state ` +
            `directory, remove the directory ${this.file}.lock (only it).`,
        );
      }
      try {
        return await operation();
      } finally {
        await release().catch(() => {});
      }
    });
  }

  private serially<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    // The chain continues whatever this operation's outcome; the caller gets the outcome itself.
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** Which file, how long, last written when: changes when anything but this process writes it (or renames one in). */
function fingerprint(stat: { ino: number; size: number; mtimeMs: number }): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}

/** The end of the file is enough to remember REMEMBERED_ROWS rows (a reject line is a few hundred bytes). */
const RECENT_BYTES = 8 * 1024 * 1024;

/**
 * The records at the end of the file, leniently: the daemon only uses them to skip repeats, so a line it cannot
 * read (a person's edit) is no reason to stop, and a file of millions of rejects is not read whole.
 */
async function recentRecords(handle: FileHandle, size: number): Promise<RejectRecord[]> {
  const length = Math.min(size, RECENT_BYTES);
  const tail = Buffer.alloc(length);
  await handle.read(tail, 0, length, size - length);
  const lines = tail.toString('utf8').split('\n');
  lines.pop(); // empty, or a torn append
  if (length < size) lines.shift(); // the part of a line cut by the start of the window
  return lines.map(parseRecord).filter((record): record is RejectRecord => record !== undefined);
}

/** Cuts a last line that has no newline (a crash mid-append) so the next line starts clean. */
async function dropTornLine(handle: FileHandle, size: number): Promise<void> {
  if (size === 0) return;
  // A torn line is one record: the last 1 MiB holds the newline before it unless the file is one torn line.
  const length = Math.min(size, 1024 * 1024);
  const tail = Buffer.alloc(length);
  await handle.read(tail, 0, length, size - length);
  if (tail[length - 1] === 0x0a) return;
  const newline = tail.lastIndexOf(0x0a);
  await handle.truncate(newline >= 0 ? size - length + newline + 1 : size - length);
}

function toRecord(rejection: Rejection, stage: RejectStage, now: number): RejectRecord {
  const key: Record<string, JsonValue> = {};
  for (const [column, value] of Object.entries(rejection.origin.key)) {
    if (typeof value !== 'symbol') key[column] = value;
  }
  const record: RejectRecord = {
    time: new Date(now).toISOString(),
    stage,
    table: rejection.origin.table,
    key,
    phone: rejection.origin.rawPhone,
    reason: rejection.reason,
  };
  if (rejection.contact) {
    const { target, phone, fields } = rejection.contact;
    record.contact = { target, phone, fields };
  }
  return record;
}

function parseRecord(line: string): RejectRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const record = value as Partial<RejectRecord>;
  const valid =
    typeof record.time === 'string' &&
    (record.stage === 'mapping' || record.stage === 'api') &&
    typeof record.table === 'string' &&
    typeof record.key === 'object' &&
    record.key !== null &&
    typeof record.phone === 'string' &&
    typeof record.reason === 'string';
  return valid ? (record as RejectRecord) : undefined;
}
