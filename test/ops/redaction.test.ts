import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { createTestDatabase, type TestDatabase } from '../harness/database.js';
import { runCli } from '../support/cli.js';
import { spawnDaemon } from '../support/daemonProcess.js';
import { eventually } from '../support/pipeline.js';

const PASSWORD = 'Pw%7f3e@9c1d#never-print';
const API_KEY = 'as_live_9d2b7e44c1a0_never_print';
const OTHER_KEY = 'as_live_51fe0b2a_refused_never_print';

/** Every spelling of a secret that would give it away: as is, JSON-escaped, URL-encoded. */
function leaks(output: string, secrets: string[]): string[] {
  return secrets.flatMap((secret) =>
    [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)].filter((form) =>
      output.includes(form),
    ),
  );
}

describe('secrets never reach the output', () => {
  let db: TestDatabase;
  let simulator: Simulator;
  let dir: string;
  let role: string;
  const yaml = (options: { password?: string; apiKey?: string } = {}) => {
    const url = new URL(db.url);
    url.username = role;
    url.password = encodeURIComponent(options.password ?? PASSWORD);
    return `
source:
  url: ${url.toString()}
  slot: ${db.name}
  publication: ${db.name}
  status_interval_ms: 200
  heartbeat_interval_ms: 500
verbose:
  url: ${simulator.url}
  api_key: ${options.apiKey ?? API_KEY}
  flush_interval_ms: 50
state_dir: ${join(dir, 'state')}
http:
  port: 0
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`;
  };

  beforeAll(async () => {
    db = await createTestDatabase('redaction');
    role = `vs_redaction_${randomBytes(4).toString('hex')}`;
    // A least-privileged role, as in docs/operations.md: REPLICATION, SELECT, and a publication made for it.
    await db.query(`CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`);
    await db.query(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD '${PASSWORD}'`);
    await db.query(`GRANT SELECT ON people TO ${role}`);
    await db.query(`CREATE PUBLICATION ${db.name} FOR TABLE people`);
    simulator = await startSimulator({ apiKey: API_KEY });
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-redaction-'));
  });
  afterAll(async () => {
    await simulator.close();
    await db.drop();
    const admin = await createTestDatabase('redaction_cleanup');
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('scrubs a secret from any log line that quotes it: error messages, URLs, headers, a printed config', () => {
    let output = '';
    const log = createLogger({
      secrets: [PASSWORD, API_KEY],
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          output += chunk.toString();
          done();
        },
      }),
    });
    const url = `postgres://sync:${encodeURIComponent(PASSWORD)}@db.internal/crm`;
    log.error({ err: new Error(`could not connect to ${url}`) }, `login refused for password ${PASSWORD}`);
    log.info(
      {
        request: { headers: { authorization: `Bearer ${API_KEY}` } },
        config: { source: { url }, verbose: { api_key: API_KEY } },
      },
      'the configuration',
    );
    expect(output.split('\n').filter(Boolean)).toHaveLength(2);
    expect(output).toContain('[redacted]');
    expect(leaks(output, [PASSWORD, API_KEY])).toEqual([]);
  });

  it('runs, reports its status and stops without printing the database password or the API key', async () => {
    const daemon = await spawnDaemon(dir, yaml());
    await daemon.waitForLog(/^streaming/);
    await db.query(`INSERT INTO people VALUES (1, 'Ada', '+12125550101')`);
    await eventually(() => simulator.store.contact('+12125550101'), 10_000, 'the contact');
    const status = await runCli(['status', '--config', join(dir, 'sync.yaml')]);
    expect(status.code).toBe(0);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(leaks(daemon.output() + status.stdout + status.stderr, [PASSWORD, API_KEY])).toEqual([]);
  });

  it('says the key was refused, exits 1, and prints no key', async () => {
    const refused = await spawnDaemon(dir, yaml({ apiKey: OTHER_KEY }));
    expect((await refused.exited).code).toBe(1);
    expect(refused.output()).toContain('Verbose refused the API key');

    const revoked = await spawnDaemon(dir, yaml());
    await revoked.waitForLog(/^streaming/);
    simulator.revokeKey();
    await db.query(`INSERT INTO people VALUES (2, 'Grace', '+12125550102')`);
    expect((await revoked.exited).code).toBe(1);
    simulator.reset();
    expect(revoked.output()).toContain('refused the API key');
    expect(leaks(refused.output() + revoked.output(), [PASSWORD, API_KEY, OTHER_KEY])).toEqual([]);
  });

  it('says the database refused the login, exits 1, and prints no password, at LOG_LEVEL=warn only warnings up', async () => {
    const wrong = 'Wrong%pass@word#never-print';
    await writeFile(join(dir, 'wrong.yaml'), yaml({ password: wrong }));
    const daemon = await spawnDaemon(dir, yaml({ password: wrong }), [], { LOG_LEVEL: 'warn' });
    expect((await daemon.exited).code).toBe(1);
    expect(daemon.output()).toContain('password authentication failed');
    expect(daemon.logs.length).toBeGreaterThan(0);
    expect(daemon.logs.filter((line) => !['warn', 'error', 'fatal'].includes(String(line.level)))).toEqual(
      [],
    );

    const status = await runCli(['status', '--config', join(dir, 'wrong.yaml')]);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('cannot connect');
    expect(leaks(daemon.output() + status.stdout + status.stderr, [wrong, API_KEY])).toEqual([]);
  });
});
