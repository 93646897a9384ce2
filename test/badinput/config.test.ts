import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, runCliOnConfig } from '../support/cli.js';
import { createPipeline, type Pipeline } from '../support/pipeline.js';

/**
 * Every way a user can get sync.yaml wrong, through the built CLI (`validate` and `run`): exit 2 and one
 * message naming file:line:col and the key path, no stack trace, no secret. And the unusual files that are
 * right (BOM and CRLF, anchors, a quoted table name with a dot) just work.
 */

const SECRETS = {
  SOURCE_DATABASE_URL: 'postgres://crm:s3cret-db-pw@127.0.0.1:1/crm',
  VERBOSE_API_KEY: 'as_live_s3cret_key',
};

const BASE = `source:
  url: \${SOURCE_DATABASE_URL}
verbose:
  url: http://127.0.0.1:1
  api_key: \${VERBOSE_API_KEY}
  batch_size: 100
http:
  port: 0
mappings:
  - table: public.people
    where: { active: true }
    list: CRM people
    fields:
      phone: [mobile, phone]
      first_name: { column: name, transform: first_word }
      last_name: { column: name, transform: [trim, title] }
`;

/** BASE with `from` replaced by `to` (which must be there: a case that changes nothing proves nothing). */
function edit(from: string | RegExp, to: string, text = BASE): string {
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`the case does not apply: ${String(from)}`);
  return changed;
}

const aliasBomb = ['x0: &a0 [lol, lol]']
  .concat(
    Array.from({ length: 7 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array(9).fill(`*a${i}`).join(', ')}]`),
  )
  .join('\n');

interface Case {
  name: string;
  /** The file's content; a function writes something other than a plain file at `file`. */
  text: string | Buffer | ((file: string) => Promise<void>);
  env?: NodeJS.ProcessEnv;
  /** The one problem line, after `<file>`. */
  problem: RegExp;
}

const CASES: Case[] = [
  {
    name: 'a tab for indentation',
    text: edit('  url: http://127.0.0.1:1', '\turl: http://127.0.0.1:1'),
    problem:
      /^:4:1: verbose\.url: invalid YAML: this line is indented with a tab; YAML indents with spaces only$/,
  },
  {
    name: 'a duplicated key',
    text: edit('  batch_size: 100\n', '  batch_size: 100\n  batch_size: 200\n'),
    problem:
      /^:7:3: verbose\.batch_size: the key "batch_size" is given twice in one mapping \(also on line 6\); keep one$/,
  },
  {
    name: 'a list where a mapping is expected',
    text: edit(
      /verbose:\n {2}url: (.*)\n {2}api_key: (.*)\n {2}batch_size: (.*)\n/,
      'verbose:\n  - url: $1\n  - api_key: $2\n  - batch_size: $3\n',
    ),
    problem: /^:4:3: verbose: expected mapping, found a list$/,
  },
  {
    name: 'mappings as a mapping',
    text: edit(
      /^mappings:\n[\s\S]*/m,
      'mappings:\n  table: public.people\n  list: CRM people\n  fields:\n    phone: mobile\n',
    ),
    problem: /^:10:3: mappings: expected a list \(each item starts with "- "\), found a mapping$/,
  },
  {
    name: 'a bare string (the API key file passed as --config), never repeated',
    text: 'as_live_s3cret_key\n',
    problem:
      /^:1:1: the file is a single string, not a mapping of settings \(source:, verbose:, mappings:\); start from sync\.example\.yaml$/,
  },
  {
    name: 'an empty file',
    text: '',
    problem: /^: the file is empty \(or only comments\); start from sync\.example\.yaml$/,
  },
  {
    name: 'a directory',
    text: (file) => mkdir(file),
    problem:
      /^: cannot read the configuration \(it is a directory; name the YAML file itself\); pass --config PATH/,
  },
  {
    name: 'a binary file',
    text: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]),
    problem:
      /^: cannot read the configuration \(it is not text \(it holds NUL bytes\): is it the right file\?\)/,
  },
  {
    name: 'a huge file',
    text: `# ${'x'.repeat(78)}\n`.repeat(142_400),
    problem:
      /^: cannot read the configuration \(it is 11\.0 MB, more than a configuration can be \(10\.0 MB\): is it the right file\?\)/,
  },
  {
    name: 'a missing file',
    text: async () => {},
    problem:
      /^: cannot read the configuration \(no such file\); pass --config PATH or set VERBOSE_SYNC_CONFIG$/,
  },
  {
    name: 'an empty section',
    text: edit(/verbose:\n(?: {2}.*\n)+/, 'verbose:\n'),
    problem: /^:3:9: verbose: expected mapping, found nothing \(an empty value\)$/,
  },
  {
    name: 'a where condition that is a list',
    text: edit('where: { active: true }', 'where: [active]'),
    problem: /^:11:12: mappings\[0\]\.where: expected mapping, found a list$/,
  },
  {
    name: 'a where value written as SQL',
    text: edit('where: { active: true }', 'where: { stage: { in: [lead, customer] } }'),
    problem:
      /^:11:23: mappings\[0\]\.where\.stage\.in: unknown key "in": a condition is a value \(equal\), a list of values \(one of\), null \(is null\) or \{ not: … \}$/,
  },
  {
    name: 'a where value of the wrong type at depth',
    text: edit('where: { active: true }', 'where: { active: [[true]] }'),
    problem: /^:11:23: mappings\[0\]\.where\.active\[0\]: expected string, number or boolean, found a list$/,
  },
  {
    name: 'a wrong item in a transform list',
    text: edit('transform: [trim, title]', 'transform: [trim, 3]'),
    problem:
      /^:16:52: mappings\[0\]\.fields\.last_name\.transform\[1\]: expected a transform name or a list of them \(trim, .*\), found number 3$/,
  },
  {
    name: 'several transforms in one string',
    text: edit('transform: [trim, title]', 'transform: "trim, title"'),
    problem:
      /^:16:45: mappings\[0\]\.fields\.last_name\.transform: unknown transform "trim, title"; write several as a list, e.g\. \[trim, title\]$/,
  },
  {
    name: 'batch_size 0',
    text: edit('batch_size: 100', 'batch_size: 0'),
    problem: /^:6:15: verbose\.batch_size: must be 1 or more, found 0$/,
  },
  {
    name: 'concurrency 1000',
    text: edit('batch_size: 100', 'batch_size: 100\n  concurrency: 1000'),
    problem: /^:7:16: verbose\.concurrency: must be at most 64, found 1000$/,
  },
  {
    name: 'port 70000',
    text: edit('port: 0', 'port: 70000'),
    problem: /^:8:9: http\.port: must be at most 65535, found 70000$/,
  },
  {
    name: 'a negative duration',
    text: edit('batch_size: 100', 'batch_size: 100\n  flush_interval_ms: -5'),
    problem: /^:7:22: verbose\.flush_interval_ms: must be 0 ms or more, found -5$/,
  },
  {
    name: 'a duration with a unit',
    text: edit('batch_size: 100', 'batch_size: 100\n  flush_interval_ms: 5s'),
    problem:
      /^:7:22: verbose\.flush_interval_ms: expected a number of milliseconds \(e\.g\. 5000\), found string "5s"$/,
  },
  {
    name: 'a request timeout of 0, meant as "no timeout"',
    text: edit('batch_size: 100', 'batch_size: 100\n  request_timeout_ms: 0'),
    problem:
      /^:7:23: verbose\.request_timeout_ms: must be 100 ms or more: every request has a timeout \(0 does not turn it off\)$/,
  },
  {
    name: 'an unknown key deep in a field object',
    text: edit(
      '{ column: name, transform: first_word }',
      '{ column: name, transform: first_word, colour: red }',
    ),
    problem:
      /^:15:58: mappings\[0\]\.fields\.first_name\.colour: unknown key "colour"; expected one of column, columns, value, template, transform, default, send_empty$/,
  },
  {
    name: 'a misspelt key deep in a field object',
    text: edit('{ column: name, transform: first_word }', '{ column: name, transfrom: first_word }'),
    problem:
      /^:15:35: mappings\[0\]\.fields\.first_name\.transfrom: unknown key "transfrom"; did you mean "transform"\?$/,
  },
  {
    name: 'misspelt mappings',
    text: edit('mappings:', 'mapings:'),
    problem: /^:9:1: mapings: unknown key "mapings"; did you mean "mappings"\?$/,
  },
  {
    name: 'a field named after its column instead of the contact field',
    text: edit('phone: [mobile, phone]', 'mobile: [mobile, phone]'),
    problem:
      /^:14:7: mappings\[0\]\.fields\.mobile: unknown key "mobile"; expected one of phone, first_name, last_name, source \("phone" is required and missing\)$/,
  },
  {
    name: 'a table with a dot, unquoted',
    text: edit('table: public.people', 'table: crm.public.people'),
    problem:
      /^:10:12: mappings\[0\]\.table: expected schema\.table, e\.g\. public\.res_partner \(quote a part that contains a dot\)$/,
  },
  {
    name: 'a template without braces',
    text: edit('{ column: name, transform: first_word }', '{ template: "first last" }'),
    problem:
      /^:15:31: mappings\[0\]\.fields\.first_name\.template: a template names at least one column in braces, e\.g\. "\{first\} \{last\}"$/,
  },
  {
    name: 'list and list_id together',
    text: edit('    list: CRM people\n', '    list: CRM people\n    list_id: lst_1\n'),
    problem: /^:13:14: mappings\[0\]\.list_id: give either list or list_id, not both$/,
  },
  {
    name: 'both column and template',
    text: edit('{ column: name, transform: first_word }', '{ column: name, template: "{first} {last}" }'),
    problem:
      /^:15:19: mappings\[0\]\.fields\.first_name: a field takes only one of column, columns, value or template \(found column and template\)$/,
  },
  {
    name: 'an unterminated ${VAR',
    text: edit('${VERBOSE_API_KEY}', '${VERBOSE_API_KEY'),
    problem:
      /^:5:12: verbose\.api_key: an unfinished variable: write \$\{NAME\} or \$\{NAME:-default\}, or \$\$\{ for a literal "\$\{"$/,
  },
  {
    name: 'a variable that expands to an invalid value (its value is never shown)',
    text: edit('url: http://127.0.0.1:1', 'url: ${VERBOSE_URL}'),
    env: { VERBOSE_URL: 'ftp://deploy:s3cret-url-pw@files.internal' },
    problem: /^:4:8: verbose\.url: expected an http\(s\) URL \(the value comes from \$\{VERBOSE_URL\}\)$/,
  },
  {
    name: 'a variable that expands to text where a number is expected',
    text: edit('batch_size: 100', 'batch_size: ${BATCH_SIZE}'),
    env: { BATCH_SIZE: 'lots' },
    problem: /^:6:15: verbose\.batch_size: expected number, found text from \$\{BATCH_SIZE\}$/,
  },
  {
    name: 'a database URL written where its section goes (the password is never shown)',
    text: edit(/source:\n {2}url: .*\n/, 'source: postgres://crm:s3cret-db-pw@db.internal/crm\n'),
    problem: /^:1:9: source: expected mapping, found a string$/,
  },
  {
    name: 'an alias without its anchor',
    text: edit('      last_name: { column: name, transform: [trim, title] }', '      last_name: *names'),
    problem:
      /^:16:18: mappings\[0\]\.fields\.last_name: the alias \*names names no anchor; define &names before using it$/,
  },
  {
    name: 'aliases that expand without end (billion laughs)',
    text: `${BASE}${aliasBomb}\n`,
    problem: /^:\d+:\d+: x\d.*: aliases expand to more than 10000 copies$/,
  },
];

/** The CLI's answer must be exactly one problem, after the header, and nothing else. */
function expectOneProblem(result: CliResult, file: string, problem: RegExp) {
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toBe('invalid configuration:');
  expect(lines[1]!.startsWith(file)).toBe(true);
  expect(lines[1]!.slice(file.length)).toMatch(problem);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  for (const secret of ['s3cret', 'as_live_s3cret_key']) expect(result.stderr).not.toContain(secret);
}

describe('malformed configurations, through the CLI', () => {
  let dir: string;
  const files = new Map<string, string>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-badinput-config-'));
    await Promise.all(
      CASES.map(async (c, i) => {
        const file = join(dir, `case-${i}.yaml`);
        files.set(c.name, file);
        if (typeof c.text === 'function') await c.text(file);
        else await writeFile(file, c.text);
      }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('validate and run: each exits 2 with one message naming file:line:col and the key path', async () => {
    const failures: string[] = [];
    for (const c of CASES) {
      const file = files.get(c.name)!;
      const env = { ...SECRETS, ...c.env };
      // The two commands of one case side by side: two cores, two processes.
      const results = await Promise.all(
        ['validate', 'run'].map(async (command) => ({
          command,
          result: await runCli([command, '--config', file], { env }),
        })),
      );
      for (const { command, result } of results) {
        try {
          expectOneProblem(result, file, c.problem);
        } catch (error) {
          failures.push(`${command}, ${c.name}: ${(error as Error).message}\n${result.stderr}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('an unreadable file: exits 2 saying the user running it may not read it', async () => {
    const unreadable = join(dir, 'unreadable');
    await mkdir(unreadable, { mode: 0o755 });
    await chmod(dir, 0o755);
    const file = join(unreadable, 'sync.yaml');
    await writeFile(file, BASE, { mode: 0o000 });
    // root reads any file: run the CLI as nobody then, as ops would run the container.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    for (const command of ['validate', 'run']) {
      const result = await runCli([command, '--config', file], { user: asUser, cwd: tmpdir(), env: SECRETS });
      expectOneProblem(
        result,
        file,
        /^: cannot read the configuration \(permission denied: the user running verbose-sync may not read it\)/,
      );
    }
  });
});

describe('unusual configurations that are right, through validate against a real database', () => {
  let p: Pipeline;
  let dir: string;
  const SCHEMA = `
    CREATE TABLE people (id serial PRIMARY KEY, name text, mobile text);
    CREATE TABLE "my.people" (id serial PRIMARY KEY, name text, mobile text);
    INSERT INTO people (name, mobile) VALUES ('Ada Lovelace', '+1 212 555 0101');
    INSERT INTO "my.people" (name, mobile) VALUES ('Grace Hopper', '+1 212 555 0102');`;
  const MAPPINGS = `
mappings:
  - table: public.people
    list: People
    fields:
      phone: mobile
      first_name: { column: name, transform: first_word }`;

  beforeAll(async () => {
    p = await createPipeline('badinput_config', MAPPINGS, SCHEMA);
    dir = await mkdtemp(join(tmpdir(), 'verbose-sync-badinput-valid-'));
  });
  afterAll(async () => {
    await p?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const validate = (text: string, env: NodeJS.ProcessEnv = {}) =>
    runCliOnConfig(dir, 'validate', text, { env });

  it('takes a file saved on Windows: a byte order mark and CRLF line endings', async () => {
    const result = await validate(`\uFEFF${p.yaml().replace(/\n/g, '\r\n')}`);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('+12125550101');
  });

  it('takes anchors, aliases and merge keys, and a quoted table name with a dot', async () => {
    const mappings = `
mappings:
  - &people
    table: public.people
    list: People
    fields: &fields
      phone: mobile
      first_name: { column: name, transform: first_word }
  - <<: *people
    table: '"my.people"'
    fields: *fields`;
    const result = await validate(p.yaml().replace(MAPPINGS, mappings));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('2 mapping(s) over public.people, public.my.people');
    expect(result.stdout).toContain('+12125550102');
  });

  it('takes a large file (a 2 MB comment) like a small one', async () => {
    const result = await validate(`${p.yaml()}\n${`# ${'-'.repeat(98)}\n`.repeat(20_000)}`);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('+12125550101');
  });

  it('takes an API key of digits from the environment as text, and never prints it', async () => {
    const result = await validate(p.yaml().replace('api_key: as_test_key', 'api_key: ${VERBOSE_API_KEY}'), {
      VERBOSE_API_KEY: '8675309123456',
    });
    // Past the configuration (exit 2 would mean refused there): the simulator refuses this key, exit 1.
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('the API key was refused');
    expect(result.stdout + result.stderr).not.toContain('8675309123456');
  });
});
