import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/jsonSchema.js';
import { ConfigError, configPath, parseConfig } from '../../src/config/load.js';
import { configReference, withReference } from '../../src/config/reference.js';

const example = readFileSync(new URL('../../sync.example.yaml', import.meta.url), 'utf8');
const env = {
  SOURCE_DATABASE_URL: 'postgres://crm:s3cret-pw@db.internal:5432/crm',
  VERBOSE_API_KEY: 'as_live_abc123',
};

function problemsOf(text: string, environment: NodeJS.ProcessEnv = env) {
  try {
    parseConfig(text, 'sync.yaml', environment);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('sync.example.yaml', () => {
  it('validates, with every default and the documented values', () => {
    const { config, secrets } = parseConfig(example, 'sync.example.yaml', env);
    expect(config.source).toMatchObject({
      url: env.SOURCE_DATABASE_URL,
      slot: 'verbose_sync',
      publication: 'verbose_sync',
    });
    expect(config.verbose).toMatchObject({
      batch_size: 500,
      flush_interval_ms: 1000,
      requests_per_second: 5,
      concurrency: 2,
    });
    expect(config.mappings[0]?.fields.phone).toEqual(['mobile', 'phone']);
    expect(secrets).toEqual(['as_live_abc123', 's3cret-pw']);
  });

  it('mentions every key of the schema, so the example documents them all', () => {
    const keys = [...configJsonSchema().matchAll(/^\s+"([a-z_]+)": \{$/gm)].map((m) => m[1]!);
    const documented = new Set([...example.matchAll(/^\s*#?\s*-?\s*([a-z_]+):/gm)].map((m) => m[1]));
    const generic = new Set(['properties', 'items', 'additionalProperties', 'not', 'anyOf', 'propertyNames']);
    expect(keys.filter((k) => !generic.has(k) && !documented.has(k))).toEqual([]);
  });
});

describe('config/sync.schema.json', () => {
  it('is generated from the zod schema and up to date (run `npm run schema` after changing it)', () => {
    const committed = readFileSync(new URL('../../config/sync.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(configJsonSchema());
  });
});

describe('environment expansion', () => {
  it('expands ${VAR} and ${VAR:-default}, and reads a plain expanded number as a number', () => {
    const text = example
      .replace('batch_size: 500', 'batch_size: ${BATCH_SIZE}')
      .replace('slot: verbose_sync', 'slot: ${SLOT:-crm_contacts}');
    const { config } = parseConfig(text, 'sync.yaml', { ...env, BATCH_SIZE: '250' });
    expect(config.verbose.batch_size).toBe(250);
    expect(config.source.slot).toBe('crm_contacts');
  });

  it('keeps a literal ${ written as $${', () => {
    const text = example.replace('source: { value: odoo }', () => 'source: { value: "$${odoo}" }');
    const field = parseConfig(text, 'sync.yaml', env).config.mappings[0]?.fields.source;
    expect(field).toMatchObject({ value: '${odoo}' });
  });
});

describe('configPath', () => {
  it('prefers --config, then $VERBOSE_SYNC_CONFIG, then ./sync.yaml', () => {
    expect(configPath('a.yaml', { VERBOSE_SYNC_CONFIG: 'b.yaml' })).toBe('a.yaml');
    expect(configPath(undefined, { VERBOSE_SYNC_CONFIG: 'b.yaml' })).toBe('b.yaml');
    expect(configPath(undefined, {})).toBe('./sync.yaml');
  });
});

/** Each malformed config gets one clear message naming the line and the key path; never a stack trace. */
describe('state_dir', () => {
  const withoutStateDir = example.replace(/^state_dir:.*$/m, '');

  it('defaults to $VERBOSE_SYNC_STATE_DIR (the image sets it to its volume), and the file wins over it', () => {
    const fromEnv = parseConfig(withoutStateDir, 'sync.yaml', { ...env, VERBOSE_SYNC_STATE_DIR: '/volume' });
    expect(fromEnv.config.state_dir).toBe('/volume');
    const fromFile = parseConfig(example, 'sync.yaml', { ...env, VERBOSE_SYNC_STATE_DIR: '/volume' });
    expect(fromFile.config.state_dir).toBe('./state');
    expect(parseConfig(withoutStateDir, 'sync.yaml', env).config.state_dir).toBe('./state');
  });
});

describe('malformed configurations', () => {
  const cases: [string, string, NodeJS.ProcessEnv, RegExp][] = [
    [
      'unknown key',
      example.replace('  batch_size: 500', '  batch_size: 500\n  colour: blue'),
      env,
      /^sync\.yaml:26:3: verbose\.colour: unknown key "colour"; expected one of url, api_key/m,
    ],
    [
      'misspelt key',
      example.replace('flush_interval_ms:', 'flush_intervall_ms:'),
      env,
      /^sync\.yaml:27:3: verbose\.flush_intervall_ms: unknown key .*did you mean "flush_interval_ms"\?/m,
    ],
    [
      'wrong type',
      example.replace('concurrency: 2', 'concurrency: two'),
      env,
      /^sync\.yaml:\d+:16: verbose\.concurrency: expected number, found string "two"/m,
    ],
    [
      'bad YAML',
      example.replace('  slot: verbose_sync', '  slot: [verbose_sync'),
      env,
      /^sync\.yaml:\d+:\d+: invalid YAML: /m,
    ],
    [
      'missing environment variable',
      example,
      { SOURCE_DATABASE_URL: env.SOURCE_DATABASE_URL },
      /^sync\.yaml:\d+:\d+: verbose\.api_key: environment variable VERBOSE_API_KEY is not set/m,
    ],
    [
      'empty mappings',
      example.replace(/^mappings:[\s\S]*/m, 'mappings: []\n'),
      env,
      /^sync\.yaml:\d+:11: mappings: at least one mapping is needed/m,
    ],
    [
      'unknown transform',
      example.replace('transform: rest_words', 'transform: rest_word'),
      env,
      /^sync\.yaml:\d+:\d+: mappings\[0\]\.fields\.last_name\.transform: unknown transform "rest_word"; did you mean "rest_words"\?/m,
    ],
    [
      'invalid cron',
      example.replace('"0 3 * * 0"', '"every sunday"'),
      env,
      /^sync\.yaml:\d+:13: resync\.schedule: invalid cron expression "every sunday"/m,
    ],
    [
      'unknown country',
      example.replace('default_country: US', 'default_country: USA'),
      env,
      /^sync\.yaml:\d+:20: phone\.default_country: unknown country "USA"/m,
    ],
    [
      'duplicate table',
      `${example}${example.slice(example.indexOf('  - table:'))}`,
      env,
      /^sync\.yaml:\d+:12: mappings\[1\]\.table: public\.res_partner is mapped twice/m,
    ],
    [
      'field with two sources',
      example.replace('{ value: odoo }', '{ value: odoo, column: name }'),
      env,
      /mappings\[0\]\.fields\.source: a field takes only one of column, columns, value or template \(found column and value\)/,
    ],
    [
      'missing phone',
      example.replace('      phone: [mobile, phone]', ''),
      env,
      /mappings\[0\]\.fields\.phone: is required/,
    ],
    [
      'both list and list_id',
      example.replace('list: Odoo contacts', 'list: Odoo contacts\n    list_id: abc'),
      env,
      /mappings\[0\]\.list_id: give either list or list_id, not both/,
    ],
    [
      'not a database URL',
      example,
      { ...env, SOURCE_DATABASE_URL: 'mysql://x' },
      /source\.url: expected a libpq URL/,
    ],
  ];

  it.each(cases)('%s', (_name, text, environment, expected) => {
    const message = problemsOf(text, environment);
    expect(message).toMatch(expected);
    expect(message).not.toMatch(/\n\s+at /);
    expect(message).not.toContain('s3cret-pw');
  });
});

describe('README configuration table', () => {
  it('lists every key with its default, generated from the schema (run `npm run schema` after changing it)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toBe(withReference(readme, configReference()));
    expect(readme).toContain('| `verbose.batch_size` | `500` | Contacts per request. |');
  });
});
