import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCli } from '../support/cli.js';
import type { DaemonProcess } from '../support/daemonProcess.js';
import { eventually } from '../support/pipeline.js';
import { CRM_MAPPINGS, CRM_SCHEMA } from './crmWorkload.js';
import { createFaultRig, type FaultRig, terminate } from './faultRig.js';

const run = promisify(execFile);

describe('the state directory', () => {
  let rig: FaultRig;
  let stateDir: string;
  let phones = 0;

  beforeAll(async () => {
    rig = await createFaultRig({ label: 'state_dir', schema: CRM_SCHEMA, mappings: CRM_MAPPINGS });
    // Missing, with its parents: the daemon creates it.
    stateDir = join(rig.dir, 'volume', 'verbose-sync', 'state');
  });
  beforeEach(({ onTestFailed }) => onTestFailed(() => rig.printDaemonOutput()));
  afterAll(() => rig.close());

  /** Inserts a row with a new phone; returns the phone. */
  async function newRow(): Promise<string> {
    const id = ++phones;
    const phone = `+1212555${String(id).padStart(4, '0')}`;
    await rig.sql.query(`INSERT INTO people VALUES (${id}, 'n${id}', '${phone}')`);
    return phone;
  }

  const contactRequests = () =>
    rig.simulator.requests.entries().filter((entry) => entry.path === '/api/public/contacts').length;

  /** Runs the daemon until `phone` is delivered, then stops it with SIGTERM. */
  async function deliver(phone: string, dir = stateDir): Promise<DaemonProcess> {
    const daemon = await rig.spawn({ stateDir: dir });
    await eventually(() => rig.simulator.store.contact(phone), 15_000, `contact ${phone}`);
    expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
    return daemon;
  }

  /** Starts the daemon, expects exit 1 having sent no contact and moved nothing; returns what it printed. */
  async function refusedStart(
    dir = stateDir,
    start: () => Promise<DaemonRun> = () => runDaemon(rig, dir),
  ): Promise<string> {
    const slotBefore = await rig.slot();
    const contactRequestsBefore = contactRequests();
    const { exit, output } = await start();
    expect(exit).toEqual({ code: 1, signal: null });
    expect(contactRequests()).toBe(contactRequestsBefore);
    expect((await rig.slot())?.confirmed).toBe(slotBefore?.confirmed);
    return output;
  }

  it('is created on start when missing, parents included', async () => {
    const phone = await newRow();
    await deliver(phone);
    expect((await stat(stateDir)).isDirectory()).toBe(true);
    expect(await rig.savedCheckpoint(stateDir)).toBeGreaterThan(0n);
  });

  it('refuses a truncated checkpoint.json, naming it and the fix, and goes on once it is restored', async () => {
    const file = join(stateDir, 'checkpoint.json');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.slice(0, Math.floor(original.length / 2)));
    const phone = await newRow();

    const output = await refusedStart();
    expect(output).toContain(`The checkpoint file ${file} is unusable: it is not valid JSON`);
    expect(output).toMatch(/Restore the file from a backup, or delete it/);
    expect(rig.simulator.store.contact(phone)).toBeUndefined();

    await writeFile(file, original);
    await deliver(phone);
  });

  it('refuses a checkpoint.json of garbage, and resumes from the slot once it is deleted as advised', async () => {
    const file = join(stateDir, 'checkpoint.json');
    await writeFile(file, '\u0000\u0000\u0000garbage\n');
    const phone = await newRow();

    const output = await refusedStart();
    expect(output).toContain(`The checkpoint file ${file} is unusable`);
    expect(rig.simulator.store.contact(phone)).toBeUndefined();

    await rm(file);
    const daemon = await deliver(phone);
    // The slot was there, so this is not a first start: no full resync reloads every row.
    expect(daemon.logs.some((line) => /full resync/.test(String(line.msg)))).toBe(false);
  });

  it('refuses a resync.json of garbage, naming it and the fix', async () => {
    const file = join(stateDir, 'resync.json');
    await writeFile(file, '{"version": 1, "id": ');
    const phone = await newRow();

    const daemon = await rig.spawn({ stateDir });
    expect(await daemon.exited).toEqual({ code: 1, signal: null });
    expect(daemon.output()).toContain(`the full resync progress file ${file} is damaged`);
    expect(daemon.output()).toMatch(/Delete it and start the daemon with --full-resync/);

    await rm(file);
    await deliver(phone);
  });

  it('refuses a directory it cannot write to, before it sends or acknowledges anything', async () => {
    const readOnly = await makeReadOnly(stateDir);
    try {
      const phone = await newRow();
      const output = await refusedStart(stateDir, () => readOnly.run(rig, stateDir));
      expect(output).toContain(`Cannot write to the state directory ${stateDir}`);
      expect(output).toContain(readOnly.advice);
      expect(rig.simulator.store.contact(phone)).toBeUndefined();
      await readOnly.undo();
      await deliver(phone);
    } finally {
      await readOnly.undo();
    }
  });

  it('refuses a state_dir under a regular file (ENOTDIR)', async () => {
    const blocker = join(rig.dir, 'not-a-directory');
    await writeFile(blocker, 'a file where a directory should be\n');
    const output = await refusedStart(join(blocker, 'state'));
    expect(output).toContain(`Cannot create the state directory ${join(blocker, 'state')}`);
    expect(output).toContain('a part of the path is a file, not a directory');
  });

  it('refuses a first start into a directory it cannot write to, without creating the slot', async () => {
    const fresh = await createFaultRig({
      label: 'state_dir_first',
      schema: CRM_SCHEMA,
      mappings: CRM_MAPPINGS,
    });
    try {
      await fresh.sql.query(`INSERT INTO people VALUES (1, 'Ada', '+12125550001')`);
      const dir = join(fresh.dir, 'state');
      await mkdir(dir);
      const readOnly = await makeReadOnly(dir);
      try {
        const { exit, output } = await readOnly.run(fresh, dir);
        expect(exit).toEqual({ code: 1, signal: null });
        expect(output).toContain(readOnly.advice);
        expect(await fresh.slot()).toBeUndefined();
      } finally {
        await readOnly.undo();
      }
      // Writable again: a normal first start loads the row that was there all along.
      const daemon = await fresh.spawn({ stateDir: dir });
      await eventually(() => fresh.simulator.store.contact('+12125550001'), 15_000, 'the existing row');
      expect(await terminate(daemon)).toEqual({ code: 0, signal: null });
    } finally {
      await fresh.close();
    }
  });
});

interface DaemonRun {
  exit: { code: number | null; signal: NodeJS.Signals | null };
  output: string;
}

/** Runs the daemon (as this process's user) until it exits by itself. */
async function runDaemon(rig: FaultRig, stateDir: string): Promise<DaemonRun> {
  const daemon = await rig.spawn({ stateDir });
  return { exit: await daemon.exited, output: daemon.output() };
}

interface ReadOnlyStateDir {
  /** What the daemon's error says for the error this way of making it read-only gives. */
  advice: string;
  /** Runs the daemon until it exits, as a user the directory is read-only for. */
  run(rig: FaultRig, stateDir: string): Promise<DaemonRun>;
  undo(): Promise<void>;
}

const ROOT_ADVICE = {
  mount: 'the file system is read-only; state_dir must be a writable, persistent directory',
  chattr: 'operation not permitted; state_dir must be writable',
  user: 'permission denied; state_dir must be writable by the user verbose-sync runs as',
};

/**
 * Makes an existing directory unwritable for the daemon. chmod does not stop root, which the tests run as, so
 * for root: a read-only tmpfs mounted over it (EROFS, as a read-only volume), else the immutable attribute
 * (EPERM), else chmod with the daemon run as `nobody` (EACCES; needs only CAP_SETUID, which containers keep).
 * `FAULT_READ_ONLY=mount|chattr|user` picks one. For a user that is not root, chmod is enough.
 */
async function makeReadOnly(dir: string): Promise<ReadOnlyStateDir> {
  let undone = false;
  const once = (undo: () => Promise<unknown>) => async () => {
    if (undone) return;
    undone = true;
    await undo();
  };
  if (process.getuid?.() !== 0) {
    await chmod(dir, 0o555);
    return { advice: ROOT_ADVICE.user, run: runDaemon, undo: once(() => chmod(dir, 0o755)) };
  }
  const wanted = process.env.FAULT_READ_ONLY;
  const attempts: string[] = [];
  if (wanted === undefined || wanted === 'mount') {
    try {
      // The mount hides what the directory held: copy it into a writable tmpfs first, then remount read-only.
      const saved = await readDirectory(dir);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      try {
        for (const [name, content] of saved) await writeFile(join(dir, name), content);
        await run('mount', ['-o', 'remount,ro', dir]);
      } catch (error) {
        await run('umount', [dir]);
        throw error;
      }
      return { advice: ROOT_ADVICE.mount, run: runDaemon, undo: once(() => run('umount', [dir])) };
    } catch (error) {
      attempts.push(`mount: ${(error as Error).message.trim()}`);
    }
  }
  if (wanted === undefined || wanted === 'chattr') {
    try {
      await run('chattr', ['+i', dir]);
      return { advice: ROOT_ADVICE.chattr, run: runDaemon, undo: once(() => run('chattr', ['-i', dir])) };
    } catch (error) {
      attempts.push(`chattr: ${(error as Error).message.trim()}`);
    }
  }
  if (wanted === undefined || wanted === 'user') {
    await chmod(dir, 0o555);
    return { advice: ROOT_ADVICE.user, run: runAsNobody, undo: once(() => chmod(dir, 0o755)) };
  }
  throw new Error(`cannot make ${dir} read-only with FAULT_READ_ONLY=${wanted}: ${attempts.join('; ')}`);
}

/** The daemon as the `nobody` user, with a config file it can read next to the state directory. */
async function runAsNobody(rig: FaultRig, stateDir: string): Promise<DaemonRun> {
  const NOBODY = 65_534;
  // mkdtemp made the work directory private to root: nobody must reach the config and the state directory.
  for (let path = stateDir; path.startsWith(rig.dir); path = dirname(path)) {
    if (path !== stateDir) await chmod(path, 0o755);
  }
  const config = join(rig.dir, 'nobody.yaml');
  await writeFile(config, rig.yaml({ stateDir }), { mode: 0o644 });
  const daemon = startCli(['run', '--config', config], {
    user: { uid: NOBODY, gid: NOBODY },
    env: { LOG_LEVEL: 'info' },
  });
  return { exit: await daemon.closed, output: daemon.output() };
}

async function readDirectory(dir: string): Promise<[string, string][]> {
  const names = await readdir(dir);
  return Promise.all(
    names.map(async (name): Promise<[string, string]> => [name, await readFile(join(dir, name), 'utf8')]),
  );
}
