import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runCliOnConfig } from '../support/cli.js';
import { createPipeline, type Pipeline } from '../support/pipeline.js';

const SCHEMA = `
  CREATE TABLE res_partner (id serial PRIMARY KEY, name text, mobile text, phone text, active boolean DEFAULT true);
  INSERT INTO res_partner (name, mobile, phone) VALUES
    ('Ada Lovelace', '+44 20 7946 0958', NULL),
    ('Grace Hopper', NULL, '(212) 555-0142'),
    ('No Phone', NULL, 'call me');`;

const MAPPINGS = `
mappings:
  - table: public.res_partner
    where: { active: true }
    list: Odoo contacts
    fields:
      phone: [mobile, phone]
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: rest_words }`;

describe('verbose-sync validate', () => {
  let p: Pipeline;
  let dir: string;
  const validate = (yaml: string, env: NodeJS.ProcessEnv = {}) =>
    runCliOnConfig(dir, 'validate', yaml, { env });
  beforeAll(async () => {
    p = await createPipeline('validate', MAPPINGS, SCHEMA);
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-validate-'));
  });
  afterAll(async () => {
    await p.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('checks the database and the key, previews real rows as contacts and rejects, and creates nothing', async () => {
    const result = await validate(p.yaml());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('✓ database');
    expect(result.stdout).toContain('does not exist yet; the first run creates it');
    expect(result.stdout).toContain('✓ Verbose: the API key is accepted');
    expect(result.stdout).toContain('+442079460958');
    expect(result.stdout).toContain('+12125550142');
    expect(result.stdout).toMatch(/rejected.*not a phone number|not a phone number/);
    const { rows } = await p.db.query(
      `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`,
    );
    expect(rows).toEqual([]);
    expect(p.simulator.requests.count()).toBe(1);
  });

  it('names an unknown column with the closest real ones, and exits 2', async () => {
    const result = await validate(p.yaml().replace('phone: [mobile, phone]', 'phone: [mobil, phone]'));
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/mappings\[0\]\.fields\.phone.*mobil.*did you mean "mobile"\?$/m);
  });

  it('says a refused API key plainly and exits 1, without printing the key', async () => {
    const result = await validate(p.yaml().replace('api_key: as_test_key', 'api_key: as_live_wrong_key_123'));
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('the API key was refused');
    expect(result.stdout + result.stderr).not.toContain('as_live_wrong_key_123');
  });

  it('validates sync.example.yaml with its variables set, saying what it could not reach (exit 0)', async () => {
    const result = await runCli(['validate', '--config', 'sync.example.yaml'], {
      env: {
        SOURCE_DATABASE_URL: 'postgres://crm:pw-not-shown@127.0.0.1:1/crm',
        VERBOSE_API_KEY: 'as_test_key',
      },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('? database: could not connect');
    expect(result.stdout + result.stderr).not.toContain('pw-not-shown');
  });
});
