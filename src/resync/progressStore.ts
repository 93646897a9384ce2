import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { JsonValue, Row } from '../domain.js';
import { ensureStateDir, fileError, syncDirectory, writeFileAtomic } from '../stateFiles.js';

export type ResyncReason = 'requested' | 'first start' | 'scheduled';

export interface TableProgress {
  /** The key of the last row of the last delivered chunk; null before the first one. */
  lastKey: Row | null;
  /** Every chunk of the table was delivered. */
  done: boolean;
  rowsDone: number;
  estimatedRows: number;
}

/** `state_dir/resync.json`: the full resync in progress, so a crash resumes after the last delivered chunk. */
export interface ResyncProgress {
  version: 1;
  id: string;
  startedAt: string;
  reason: ResyncReason;
  /** By `schema.table`. */
  tables: Record<string, TableProgress>;
}

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

const progressSchema = z.object({
  version: z.literal(1),
  id: z.string().min(1),
  startedAt: z.string(),
  reason: z.enum(['requested', 'first start', 'scheduled']),
  tables: z.record(
    z.string(),
    z.object({
      lastKey: z.record(z.string(), jsonValue).nullable(),
      done: z.boolean(),
      rowsDone: z.number().int().min(0),
      estimatedRows: z.number().min(0),
    }),
  ),
});

export class ResyncProgressError extends Error {
  override name = 'ResyncProgressError';
}

export class ProgressStore {
  readonly path: string;

  constructor(private readonly stateDir: string) {
    this.path = join(stateDir, 'resync.json');
  }

  /** The resync in progress, or undefined when none is. A damaged file is an error, never a silent fresh start. */
  async load(): Promise<ResyncProgress | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fileError(error, 'read the full resync progress', this.path);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw this.damaged(`it is not valid JSON (${(error as Error).message})`);
    }
    const parsed = progressSchema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw this.damaged(`${issue?.path.join('.') || 'the file'}: ${issue?.message ?? 'unexpected content'}`);
    }
    return parsed.data;
  }

  /** Replaces the file atomically: a crash leaves the old or the new progress, never a torn one. */
  async save(progress: ResyncProgress): Promise<void> {
    await ensureStateDir(this.stateDir);
    await writeFileAtomic(
      this.path,
      `${JSON.stringify(progress, null, 2)}\n`,
      'save the full resync progress',
    );
  }

  /** The resync finished: nothing to resume. */
  async clear(): Promise<void> {
    await rm(this.path, { force: true });
    await syncDirectory(this.stateDir);
  }

  private damaged(detail: string): ResyncProgressError {
    return new ResyncProgressError(
      `the full resync progress file ${this.path} is damaged: ${detail}. ` +
        `It records where an interrupted full resync stopped. Delete it and start the daemon with --full-resync ` +
        `to read every table again from the beginning (nothing is lost, rows are upserted by phone), ` +
        `or restore the file from a backup to continue where it stopped.`,
    );
  }
}
