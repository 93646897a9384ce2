import { isSupportedCountry } from 'libphonenumber-js';
import cron from 'node-cron';
import { z } from 'zod';
import { closest } from './suggest.js';

/**
 * The single source of truth for `sync.yaml`: types, defaults and descriptions. `config/sync.schema.json`
 * is generated from it (`npm run schema`) and `sync.example.yaml` documents every key.
 */

export const TRANSFORMS = [
  'trim',
  'lower',
  'upper',
  'title',
  'first_word',
  'rest_words',
  'last_word',
  'digits',
] as const;
export type Transform = (typeof TRANSFORMS)[number];

const transform = z.enum(TRANSFORMS, {
  error: (issue) => {
    if (typeof issue.input !== 'string') {
      return `expected a transform name or a list of them (${TRANSFORMS.join(', ')}), found ${kindOf(issue.input)}`;
    }
    if (/[\s,]/.test(issue.input.trim())) {
      return `unknown transform ${JSON.stringify(issue.input)}; write several as a list, e.g. [trim, title]`;
    }
    const suggestion = closest(issue.input, TRANSFORMS);
    return `unknown transform ${JSON.stringify(issue.input)}; ${suggestion ? `did you mean ${JSON.stringify(suggestion)}? ` : ''}expected one of ${TRANSFORMS.join(', ')}`;
  },
});

/** A value of the wrong kind, as a message names it. */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

const columnName = z.string().min(1).describe('A column name, exactly as in the database (case-sensitive).');

const sourceSpec = {
  column: columnName.optional().describe('Take the value from this column.'),
  columns: z
    .array(columnName)
    .min(1)
    .optional()
    .describe('Take the value from the first of these columns that is not empty.'),
  value: z.string().optional().describe('A constant value.'),
  template: z
    .string()
    .regex(/\{[^{}]+\}/, 'a template names at least one column in braces, e.g. "{first} {last}"')
    .optional()
    .describe('Columns in braces, e.g. "{first_name} {last_name}"; an empty column becomes "".'),
};

export const fieldObjectSchema = z
  .strictObject({
    ...sourceSpec,
    transform: z
      .union([transform, z.array(transform)])
      .optional()
      .describe(`One transform or a list applied in order: ${TRANSFORMS.join(', ')}.`),
    default: z.string().optional().describe('Used when the value is empty after transforms.'),
    send_empty: z
      .boolean()
      .default(false)
      .describe('Send an empty value as "" instead of leaving the field out (which keeps what Verbose has).'),
  })
  .superRefine((field, ctx) => {
    const given = (['column', 'columns', 'value', 'template'] as const).filter((k) => field[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? 'a field needs one of column, columns, value or template'
            : `a field takes only one of column, columns, value or template (found ${given.join(' and ')})`,
      });
    }
  });

/** A column, a list of columns (first non-empty wins), or an object with one source and options. */
export const fieldSchema = z.union([columnName, z.array(columnName).min(1), fieldObjectSchema], {
  error:
    'expected a column name, a list of column names, or an object with column, columns, value or template',
});
export type FieldSpec = z.infer<typeof fieldSchema>;

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const condition = z.union([
  scalar,
  z.null(),
  z.array(z.union([scalar, z.null()])).min(1),
  z.strictObject({
    not: z.union([scalar, z.null(), z.array(z.union([scalar, z.null()])).min(1)]),
  }),
]);
export type Condition = z.infer<typeof condition>;

const listSpec = z.union([
  z.string().min(1),
  z.strictObject({
    column: columnName.describe('Take the list from this column of the row.'),
    default: z.string().min(1).optional().describe('Used when the column is empty.'),
  }),
]);
export type ListSpec = z.infer<typeof listSpec>;

const tableName = z
  .string()
  .regex(
    /^("[^"]+"|[^".\s]+)(\.("[^"]+"|[^".\s]+))?$/,
    'expected schema.table, e.g. public.res_partner (quote a part that contains a dot)',
  )
  .describe(
    'The table, schema-qualified (public. is assumed when missing), exactly as named in the database.',
  );

export const mappingSchema = z
  .strictObject({
    table: tableName,
    where: z
      .record(z.string(), condition)
      .optional()
      .describe(
        'Only rows matching every condition are sent: `col: value` (equal), `col: [a, b]` (one of), ' +
          '`col: null` (is null), `col: { not: value | [..] | null }`.',
      ),
    list: listSpec
      .optional()
      .describe('The Verbose list, by name (found or created): a constant or { column }.'),
    list_id: listSpec.optional().describe('The Verbose list, by id: a constant or { column }.'),
    phone_country: fieldSchema
      .optional()
      .describe(
        'Where the CRM stores the phone country (ISO code such as FR, or a calling code such as +33); ' +
          'phone.default_country is used when it is empty.',
      ),
    fields: z
      .strictObject({
        phone: fieldSchema.describe('The phone number; normalised to E.164. Required.'),
        first_name: fieldSchema.optional().describe("The contact's first name."),
        last_name: fieldSchema.optional().describe("The contact's last name."),
        source: fieldSchema.optional().describe('Where the contact came from, e.g. { value: odoo }.'),
      })
      .describe('How each Verbose contact field is made from the row.'),
  })
  .superRefine((mapping, ctx) => {
    if (mapping.list !== undefined && mapping.list_id !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['list_id'], message: 'give either list or list_id, not both' });
    }
  });
export type Mapping = z.infer<typeof mappingSchema>;

const duration = (description: string, defaultMs: number) =>
  z.number().int().min(0).default(defaultMs).describe(description);

export const configSchema = z
  .strictObject({
    source: z
      .strictObject({
        // A refinement rather than a pattern, so editors do not flag `${SOURCE_DATABASE_URL}` in the file.
        url: z
          .string()
          .refine(
            (url) => /^postgres(ql)?:\/\//.test(url),
            'expected a libpq URL such as postgres://user:password@host:5432/db',
          )
          .describe('libpq URL of the CRM database, e.g. ${SOURCE_DATABASE_URL}.'),
        slot: z
          .string()
          .regex(/^[a-z0-9_]{1,63}$/, 'slot names use lower-case letters, digits and _ (at most 63)')
          .default('verbose_sync')
          .describe('The logical replication slot; created (pgoutput) when missing.'),
        publication: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'expected a plain identifier (letters, digits, _)')
          .default('verbose_sync')
          .describe('The publication; created for the mapped tables when missing.'),
        status_interval_ms: duration('How often the acknowledged position is reported to the server.', 5_000),
        heartbeat_interval_ms: duration(
          'How often a heartbeat message is written so an idle publication does not pin WAL (0 turns it off).',
          30_000,
        ),
      })
      .describe('The CRM database.'),
    verbose: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
          .default('https://astrasend-mocha.vercel.app')
          .describe('Base URL of the Verbose API.'),
        api_key: z
          .string()
          .min(1, 'the API key is empty')
          .describe('Workspace API key, e.g. ${VERBOSE_API_KEY}.'),
        batch_size: z.number().int().min(1).max(10_000).default(500).describe('Contacts per request.'),
        flush_interval_ms: duration('The longest a change waits before it is sent.', 1_000),
        requests_per_second: z
          .number()
          .positive()
          .max(1_000)
          .default(5)
          .describe('The rate budget shared by every request to Verbose.'),
        concurrency: z.number().int().min(1).max(64).default(2).describe('Requests in flight at once.'),
        request_timeout_ms: z
          .number()
          .int()
          .min(100, 'must be 100 ms or more: every request has a timeout (0 does not turn it off)')
          .default(30_000)
          .describe('A request with no answer after this long is retried.'),
        retry_alarm_ms: duration(
          'When retries of one batch have gone on this long, log an alarm and raise the retry_alarm metric.',
          300_000,
        ),
      })
      .describe('The Verbose API.'),
    phone: z
      .strictObject({
        default_country: z
          .string()
          .default('US')
          .refine((c) => isSupportedCountry(c), {
            error: (issue) =>
              `unknown country ${JSON.stringify(issue.input)}; expected an ISO 3166-1 alpha-2 code such as US, GB, FR`,
          })
          .describe('Country for numbers written without a country code (ISO 3166-1 alpha-2).'),
      })
      .default({ default_country: 'US' })
      .describe('Phone number normalisation.'),
    state_dir: z
      .string()
      .min(1)
      .default('./state')
      .describe(
        'Where the checkpoint, resync progress and rejected contacts are kept; must persist. ' +
          'Relative to the working directory; defaults to $VERBOSE_SYNC_STATE_DIR when set.',
      ),
    max_pending_contacts: z
      .number()
      .int()
      .min(100)
      .default(20_000)
      .describe(
        'Contacts waiting for delivery before the stream is paused; also how many phones are remembered ' +
          'for collision warnings and skipped unchanged sends (bounds memory: about 1.4 kB a contact).',
      ),
    shutdown_timeout_ms: duration('On SIGTERM, how long in-flight requests may take to finish.', 10_000),
    http: z
      .strictObject({
        host: z.string().default('0.0.0.0').describe('Address for /healthz, /readyz and /metrics.'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65_535)
          .default(9464)
          .describe('Port for /healthz, /readyz and /metrics (0 picks a free one).'),
      })
      .default({ host: '0.0.0.0', port: 9464 })
      .describe('The operations endpoint.'),
    resync: z
      .strictObject({
        schedule: z
          .string()
          .refine((expression) => cron.validate(expression), {
            error: (issue) =>
              `invalid cron expression ${JSON.stringify(issue.input)}; expected e.g. "0 3 * * 0" (minute hour day month weekday)`,
          })
          .optional()
          .describe('Run a full resync periodically (cron syntax, server time zone).'),
        chunk_size: z.number().int().min(1).max(100_000).default(5_000).describe('Rows read per chunk.'),
      })
      .default({ chunk_size: 5_000 })
      .describe('Full resync.'),
    mappings: z
      .array(mappingSchema)
      .min(1, 'at least one mapping is needed: which table feeds Verbose contacts?')
      .superRefine((mappings, ctx) => {
        const seen = new Map<string, number>();
        mappings.forEach((m, i) => {
          const key = `${qualifiedTable(m.table)}|${JSON.stringify(m.where ?? {})}|${JSON.stringify(m.list ?? m.list_id ?? '')}`;
          const first = seen.get(key);
          if (first !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: [i, 'table'],
              message: `${m.table} is mapped twice with the same filter and list (also mappings[${first}]); merge them or give each a different where or list`,
            });
          } else seen.set(key, i);
        });
      })
      .describe('Which tables feed Verbose contacts, and how.'),
  })
  .describe('verbose-sync configuration');

export type Config = z.infer<typeof configSchema>;

/** `res_partner` → `public.res_partner`; quotes removed, case kept. */
export function qualifiedTable(table: string): string {
  const parts = table.match(/"[^"]+"|[^."]+/g) ?? [table];
  const names = parts.map((p) => p.replace(/^"|"$/g, ''));
  return names.length === 1 ? `public.${names[0]}` : `${names[0]}.${names[1]}`;
}
