import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProgressStore, type ResyncProgress } from '../../src/resync/progressStore.js';

const progress: ResyncProgress = {
  version: 1,
  id: 'r1',
  startedAt: '2026-01-01T00:00:00.000Z',
  reason: 'requested',
  tables: {
    'public.people': { lastKey: { id: 10, code: 'x' }, done: false, rowsDone: 10, estimatedRows: 25 },
    'Crm.peopleX': { lastKey: null, done: false, rowsDone: 0, estimatedRows: 0 },
  },
};

describe('ProgressStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'resync-progress-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('has nothing to resume when no resync is in progress', async () => {
    expect(await new ProgressStore(join(dir, 'missing')).load()).toBeUndefined();
  });

  it('saves into state_dir/resync.json (creating the directory) and loads it back', async () => {
    const store = new ProgressStore(join(dir, 'state'));
    await store.save(progress);
    expect(store.path).toBe(join(dir, 'state', 'resync.json'));
    expect(await store.load()).toEqual(progress);
    expect(await new ProgressStore(join(dir, 'state')).load()).toEqual(progress);
  });

  it('replaces the file through a renamed temporary file, leaving no temporary behind', async () => {
    const store = new ProgressStore(dir);
    await store.save(progress);
    const before = await stat(store.path);
    await store.save({ ...progress, id: 'r2' });
    const after = await stat(store.path);
    // A new inode: the file was written aside and renamed over, never rewritten in place.
    expect(after.ino).not.toBe(before.ino);
    expect(await readdir(dir)).toEqual(['resync.json']);
    expect((await store.load())?.id).toBe('r2');
  });

  it('refuses a corrupt file with an error that names it and says how to fix it', async () => {
    const store = new ProgressStore(dir);
    await writeFile(store.path, '{"version": 1, "id": "r1", "tab');
    const error = await store.load().catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(store.path);
    expect((error as Error).message).toMatch(/not valid JSON/);
    expect((error as Error).message).toMatch(/Delete it and start the daemon with --full-resync/);
  });

  it('refuses a file of the wrong shape', async () => {
    const store = new ProgressStore(dir);
    await writeFile(store.path, JSON.stringify({ ...progress, tables: { t: { lastKey: 5 } } }));
    await expect(store.load()).rejects.toThrow(/resync\.json is damaged: tables\.t\.lastKey/);
    await writeFile(store.path, JSON.stringify({ ...progress, version: 2 }));
    await expect(store.load()).rejects.toThrow(/damaged: version/);
  });

  it('clears a finished resync, and clearing twice is harmless', async () => {
    const store = new ProgressStore(dir);
    await store.save(progress);
    await store.clear();
    await store.clear();
    expect(await store.load()).toBeUndefined();
    await new ProgressStore(join(dir, 'never-made')).clear();
  });

  it('writes readable JSON', async () => {
    const store = new ProgressStore(dir);
    await store.save(progress);
    expect(JSON.parse(await readFile(store.path, 'utf8'))).toEqual(progress);
  });
});
