import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorMessage } from './errors.js';

/** A state file that cannot be read or written; the message names the file and what to do. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

/**
 * Replaces `file` with `text` so that a crash at any moment leaves either the old or the new content: write a
 * temporary file beside it, fsync it, rename it over the file, fsync the directory (so the rename survives).
 */
export async function writeFileAtomic(file: string, text: string, action = 'write'): Promise<void> {
  const temporary = `${file}.tmp`;
  try {
    const handle = await open(temporary, 'w', 0o644);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    await syncDirectory(dirname(file));
  } catch (error) {
    throw fileError(error, action, file);
  }
}

/** Creates the state directory when it is missing; a clear error when that is impossible. */
export async function ensureStateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw fileError(error, 'create the state directory', dir);
  }
}

/**
 * Fails at once, naming the directory and the fix, when `dir` cannot be written (a read-only volume, wrong
 * owner): otherwise the daemon would stream and send first, and only fail at its first checkpoint.
 */
export async function checkStateDirWritable(dir: string): Promise<void> {
  const probe = join(dir, '.write-check');
  try {
    const handle = await open(probe, 'w');
    await handle.close();
    await rm(probe, { force: true });
  } catch (error) {
    throw fileError(error, 'write to the state directory', dir);
  }
}

/** The rename itself must reach the disk, or a power cut could bring back the old file. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the rename is still atomic there.
    const code = (error as NodeJS.ErrnoException).code;
    if (!['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'ENOENT'].includes(code ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}

/** Turns a file system error into one that names the file and the fix, keeping the original as `cause`. */
export function fileError(error: unknown, action: string, path: string): StateFileError {
  if (error instanceof StateFileError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const advice: Record<string, string> = {
    EROFS: 'the file system is read-only; state_dir must be a writable, persistent directory (a volume)',
    EACCES: 'permission denied; state_dir must be writable by the user verbose-sync runs as',
    EPERM: 'operation not permitted; state_dir must be writable by the user verbose-sync runs as',
    ENOSPC: 'the disk is full; free space on the volume that holds state_dir',
    EDQUOT: 'the disk quota is exhausted; free space on the volume that holds state_dir',
    ENOTDIR: 'a part of the path is a file, not a directory; point state_dir at a directory',
    EISDIR: 'a directory is in the way of the file; remove it or point state_dir elsewhere',
  };
  const reason = (code && advice[code]) ?? errorMessage(error);
  return new StateFileError(`Cannot ${action} ${path}: ${reason}${code ? ` (${code})` : ''}`, {
    cause: error,
  });
}
