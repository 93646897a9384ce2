import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../src/delivery/checkpointStore.js';
import { RejectLog, type RejectRecord, rejectedRows } from '../../src/delivery/rejectLog.js';
import type { Rejection } from '../../src/domain.js';
import { fileError, StateFileError } from '../../src/stateFiles.js';
import { eventually, VirtualClock } from './virtualClock.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'verbose-sync-delivery-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function store(stateDir: string, clock = new VirtualClock(), slot = 'verbose_sync') {
  const errors: StateFileError[] = [];
  const s = new CheckpointStore({
    stateDir,
    slot,
    now: clock.now,
    sleep: clock.sleep,
    onError: (e) => errors.push(e),
  });
  return { store: s, clock, errors };
}

describe('CheckpointStore', () => {
  it('creates a missing state dir, starts empty, and persists atomically on flush', async () => {
    const dir = join(root, 'nested', 'state');
    const { store: s } = store(dir);
    expect(await s.load()).toBeUndefined();
    expect((await stat(dir)).isDirectory()).toBe(true);
    s.save(0x16b3748n);
    await s.flush();
    const saved = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    expect(saved).toMatchObject({ version: 1, slot: 'verbose_sync', lsn: '0/16B3748' });
    expect(typeof saved.updatedAt).toBe('string');
    expect(await store(dir).store.load()).toBe(0x16b3748n);
  });

  it('writes at most once per throttle interval while the position moves, and keeps the newest', async () => {
    const { store: s, clock } = store(root);
    await s.load();
    const written = async () =>
      JSON.parse(await readFile(join(root, 'checkpoint.json'), 'utf8').catch(() => '{}')).lsn as
        | string
        | undefined;
    s.save(1n);
    await s.flush();
    expect(await written()).toBe('0/1');
    // Within the throttle interval of that write: the loop sleeps (virtual time) before writing again.
    s.save(2n);
    s.save(3n);
    await clock.advance(100);
    expect(await written()).toBe('0/1');
    await clock.advance(150);
    // The write itself is real I/O (with fsyncs): wait for it in real time.
    await eventually(async () => (await written()) === '0/3');
    s.save(2n); // never backwards
    await s.flush();
    expect(await written()).toBe('0/3');
  });

  it('refuses a corrupt file with a message naming it and the way out', async () => {
    await writeFile(join(root, 'checkpoint.json'), '{"version":1,"slot":"verbose_sy');
    const error = await store(root)
      .store.load()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateFileError);
    expect((error as Error).message).toContain(join(root, 'checkpoint.json'));
    expect((error as Error).message).toMatch(/not valid JSON.*will not guess.*delete it/s);
  });

  it('refuses a bad lsn and a file of another slot', async () => {
    await writeFile(join(root, 'checkpoint.json'), '{"version":1,"slot":"verbose_sync","lsn":"16B3748"}');
    await expect(store(root).store.load()).rejects.toThrow(/"lsn" is "16B3748", not a position/);
    await writeFile(join(root, 'checkpoint.json'), '{"version":1,"slot":"other","lsn":"0/1"}');
    await expect(store(root).store.load()).rejects.toThrow(
      /belongs to slot "other", but source.slot is "verbose_sync"/,
    );
  });

  it('says clearly when the state dir cannot be created or written', async () => {
    await writeFile(join(root, 'file'), 'x');
    await expect(store(join(root, 'file', 'state')).store.load()).rejects.toThrow(
      /Cannot create the state directory .*file\/state: a part of the path is a file.*\(ENOTDIR\)/,
    );
    // Running as root, a chmod'ed directory stays writable, so the read-only message is checked directly.
    const readOnly = Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
    expect(fileError(readOnly, 'write the checkpoint', '/state/checkpoint.json').message).toBe(
      'Cannot write the checkpoint /state/checkpoint.json: the file system is read-only; state_dir must be a ' +
        'writable, persistent directory (a volume) (EROFS)',
    );
  });

  it('reports a failed write through onError and flush', async () => {
    const dir = join(root, 'state');
    const { store: s, errors } = store(dir);
    await s.load();
    await rm(dir, { recursive: true });
    await writeFile(dir, 'now a file');
    s.save(5n);
    await expect(s.flush()).rejects.toThrow(/Cannot write the checkpoint/);
    expect(errors).toHaveLength(1);
  });
});

const rejection = (phone: string, reason: string): Rejection => ({
  origin: { table: 'public.people', key: { id: 7 }, rawPhone: phone },
  reason,
  commitLsn: 1n,
  contact: { target: { list: 'L' }, phone: `+1${phone}`, fields: { first_name: 'Ann' } },
});

describe('RejectLog', () => {
  it('appends, lists and removes rejects as JSON lines', async () => {
    const clock = new VirtualClock(Date.parse('2025-01-01T00:00:00Z'));
    const log = new RejectLog({ stateDir: join(root, 'state'), now: clock.now });
    expect(await log.list()).toEqual([]);
    await log.append(rejection('555 0001', 'Invalid phone number: +15550001'), 'api');
    await log.append({ ...rejection('n/a', 'no phone'), contact: undefined }, 'mapping');
    const records = await log.list();
    expect(records).toEqual<RejectRecord[]>([
      {
        time: '2025-01-01T00:00:00.000Z',
        stage: 'api',
        table: 'public.people',
        key: { id: 7 },
        phone: '555 0001',
        reason: 'Invalid phone number: +15550001',
        contact: { target: { list: 'L' }, phone: '+1555 0001', fields: { first_name: 'Ann' } },
      },
      {
        time: '2025-01-01T00:00:00.000Z',
        stage: 'mapping',
        table: 'public.people',
        key: { id: 7 },
        phone: 'n/a',
        reason: 'no phone',
      },
    ]);
    const removed = await log.remove((r) => r.stage === 'api');
    expect(removed.map((r) => r.phone)).toEqual(['555 0001']);
    expect((await log.list()).map((r) => r.phone)).toEqual(['n/a']);
  });

  it('ignores a torn last line and starts the next append on a line of its own', async () => {
    const file = join(root, 'rejects.jsonl');
    const log = new RejectLog({ stateDir: root, now: () => 0 });
    await log.append(rejection('1', 'one'), 'api');
    await writeFile(file, `${await readFile(file, 'utf8')}{"time":"19`);
    expect((await log.list()).map((r) => r.reason)).toEqual(['one']);
    const fresh = new RejectLog({ stateDir: root, now: () => 0 });
    await fresh.append(rejection('2', 'two'), 'api');
    expect((await fresh.list()).map((r) => r.reason)).toEqual(['one', 'two']);
  });

  it('never loses an append made by another process while rejects --retry rewrites the file', async () => {
    const daemon = new RejectLog({ stateDir: root, now: () => 0, collapseRepeats: true });
    const retry = new RejectLog({ stateDir: root, now: () => 0 });
    await daemon.append(rejection('1', 'retried'), 'mapping');
    let appended: Promise<boolean> | undefined;
    // The daemon appends right while the retry has read the file and is about to replace it.
    await retry.remove((record) => {
      appended ??= daemon.append(rejection('2', 'new while retrying'), 'mapping');
      return record.reason === 'retried';
    });
    await appended;
    expect((await daemon.list()).map((r) => r.reason)).toEqual(['new while retrying']);
  });

  it('counts a row rejected at every save as one row, with its latest reason', async () => {
    const log = new RejectLog({ stateDir: root, now: () => 0 });
    await log.append(rejection('12', 'too short for US'), 'mapping');
    const other = rejection('n/a', 'not a phone number');
    await log.append({ ...other, origin: { ...other.origin, key: { id: 8 } } }, 'mapping');
    await log.append(rejection('123', 'too short for US, again'), 'mapping');
    const rows = rejectedRows(await log.list());
    expect(rows.map((row) => [row.latest.key, row.latest.reason, row.lines])).toEqual([
      [{ id: 7 }, 'too short for US, again', 2],
      [{ id: 8 }, 'not a phone number', 1],
    ]);
  });

  it("writes a row's reject again only when it says something new about the row", async () => {
    const daemon = new RejectLog({ stateDir: root, now: () => 0, collapseRepeats: true });
    const reasons = async () => (await daemon.list()).map((r) => r.reason);
    expect(await daemon.append(rejection('12', 'too short'), 'mapping')).toBe(true);
    expect(await daemon.append(rejection('12', 'too short'), 'mapping')).toBe(false);
    expect(await daemon.append(rejection('123', 'too short'), 'mapping')).toBe(true);
    expect(await daemon.append(rejection('12', 'too short'), 'mapping')).toBe(true);
    expect(await reasons()).toEqual(['too short', 'too short', 'too short']);

    // A restarted daemon reads what the file says before it writes.
    const restarted = new RejectLog({ stateDir: root, now: () => 0, collapseRepeats: true });
    expect(await restarted.append(rejection('12', 'too short'), 'mapping')).toBe(false);
    // rejects --retry removed the row's lines: the same reject is news again.
    await new RejectLog({ stateDir: root, now: () => 0 }).remove(() => true);
    expect(await restarted.append(rejection('12', 'too short'), 'mapping')).toBe(true);
    expect(await reasons()).toEqual(['too short']);
  });

  it('writes every reject, repeats too, while rejects --retry runs', async () => {
    const daemon = new RejectLog({ stateDir: root, now: () => 0, collapseRepeats: true });
    const retry = new RejectLog({ stateDir: root, now: () => 0 });
    expect(await daemon.append(rejection('12', 'too short'), 'mapping')).toBe(true);
    // The retry may remove the line a collapsed repeat would rely on.
    await retry.whileRetrying(async () => {
      expect(await daemon.append(rejection('12', 'too short'), 'mapping')).toBe(true);
    });
    expect(await daemon.append(rejection('12', 'too short'), 'mapping')).toBe(false);
  });

  it('keeps appending after another process left a torn line or a person a line it cannot read', async () => {
    const file = join(root, 'rejects.jsonl');
    const daemon = new RejectLog({ stateDir: root, now: () => 0, collapseRepeats: true });
    await daemon.append(rejection('1', 'one'), 'mapping');
    await writeFile(file, `${await readFile(file, 'utf8')}a note a person typed\n{"time":"19`);
    expect(await daemon.append(rejection('2', 'two'), 'mapping')).toBe(true);
    const lines = (await readFile(file, 'utf8')).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toBe('a note a person typed');
    expect(JSON.parse(lines[2]!)).toMatchObject({ reason: 'two' });
  });

  it('names the file and line of a corrupt record', async () => {
    await writeFile(join(root, 'rejects.jsonl'), '{"nope":1}\n');
    await expect(new RejectLog({ stateDir: root, now: () => 0 }).list()).rejects.toThrow(
      /rejects\.jsonl line 1 is not a reject record/,
    );
  });
});
