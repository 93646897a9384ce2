import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { createPipeline, eventually, type Pipeline } from '../support/pipeline.js';

const SCHEMA = `CREATE TABLE people (id int PRIMARY KEY, name text, mobile text)`;
const MAPPINGS = `
mappings:
  - table: public.people
    fields: { phone: mobile, first_name: name }`;

describe('verbose-sync rejects', () => {
  let p: Pipeline;
  let config: string;
  const rejectsFile = () => join(p.stateDir, 'rejects.jsonl');
  beforeAll(async () => {
    p = await createPipeline('rejects', MAPPINGS, SCHEMA);
    config = join(p.stateDir, 'sync.yaml');
    await writeFile(config, p.yaml());
  });
  afterAll(() => p.close());

  it('records rows that cannot be contacts with their reason, lists each once, and resends them once fixed', async () => {
    const daemon = await p.start();
    await p.db.query(`INSERT INTO people VALUES
      (1, 'Good', '+12125550101'), (2, 'Typo', 'call me'), (3, 'Gone', 'n/a'), (4, 'Still bad', '12')`);
    await eventually(() => p.simulator.store.contact('+12125550101'), 10_000, 'the good row');
    const lines = async () => (await readFile(rejectsFile(), 'utf8').catch(() => '')).split('\n').length - 1;
    await eventually(async () => (await lines()) === 3, 10_000, 'three rejects');
    // Saved again with the same bad phone (automation touches rows all day): nothing new to say about it.
    await p.db.query(`UPDATE people SET name = 'Typo!' WHERE id = 2`);
    await p.db.query(`INSERT INTO people VALUES (5, 'After', '+12125550105')`);
    await eventually(() => p.simulator.store.contact('+12125550105'), 10_000, 'the row written after');
    expect(await lines()).toBe(3);
    // Another bad phone for the same row: a new line, and still one row to fix.
    await p.db.query(`UPDATE people SET mobile = 'call me later' WHERE id = 2`);
    await eventually(async () => (await lines()) === 4, 10_000, 'the new reject');
    await daemon.stop();

    const listed = await runCli(['rejects', '--config', config]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      /mapping\s+public\.people id=2\s+phone "call me later"\s+.*not a phone number\s+\(recorded 2 times\)/,
    );
    expect(listed.stdout.match(/id=2/g)).toHaveLength(1);
    expect(listed.stdout).toContain('3 rejected contact(s)');

    await p.db.query(`UPDATE people SET mobile = '(212) 555-0102' WHERE id = 2`);
    await p.db.query(`DELETE FROM people WHERE id = 3`);
    const retried = await runCli(['rejects', '--retry', '--config', config]);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain('retried 3: 1 contact(s) sent, 1 still rejected');
    expect(retried.stdout).toContain('1 row(s) no longer in the database');
    expect(p.simulator.store.contact('+12125550102')).toMatchObject({ first_name: 'Typo!' });

    const after = await runCli(['rejects', '--config', config]);
    expect(after.stdout).toContain('1 rejected contact(s)');
    expect(after.stdout).toContain('id=4');
  });
});
