import { readFileSync } from 'node:fs';
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parse, parseDocument } from 'yaml';
import { type core, z } from 'zod';
import { type Config, configSchema } from './schema.js';
import { closest } from './suggest.js';

export interface ConfigProblem {
  /** `mappings[0].fields.phone` */
  path: string;
  line?: number | undefined;
  column?: number | undefined;
  message: string;
}

/** Bad configuration: the CLI prints `format()` and exits 2. Never carries a secret's value. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
  }
}

function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

export interface LoadedConfig {
  config: Config;
  file: string;
  /** Values that must never be printed: the API key and the database password. */
  secrets: string[];
}

/** `--config`, else `$VERBOSE_SYNC_CONFIG`, else `./sync.yaml`. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.VERBOSE_SYNC_CONFIG ?? './sync.yaml';
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error);
    throw new ConfigError(file, [
      {
        path: '',
        message: `cannot read the configuration (${reason}); pass --config PATH or set VERBOSE_SYNC_CONFIG`,
      },
    ]);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const position = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    // Later YAML errors are mostly echoes of the first one.
    const [first] = doc.errors;
    throw new ConfigError(file, [
      { path: '', ...position(first?.pos[0]), message: `invalid YAML: ${first?.message.split('\n')[0]}` },
    ]);
  }

  const envProblems: ConfigProblem[] = [];
  const raw = expandEnvironment(doc, env, (path, offset, message) =>
    envProblems.push({ path: formatPath(path), ...position(offset), message }),
  );
  if (envProblems.length > 0) throw new ConfigError(file, envProblems);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [
      { path: '', message: 'the file is empty or not a mapping; start from sync.example.yaml' },
    ]);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.flatMap((issue) => describeIssue(issue, doc, raw, position)),
    );
  }
  const config = parsed.data;
  // The container image sets VERBOSE_SYNC_STATE_DIR to its volume; a state_dir in the file still wins.
  if ((raw as { state_dir?: unknown }).state_dir === undefined && env.VERBOSE_SYNC_STATE_DIR) {
    config.state_dir = env.VERBOSE_SYNC_STATE_DIR;
  }
  return { config, file, secrets: secretsOf(config) };
}

function secretsOf(config: Config): string[] {
  const secrets = [config.verbose.api_key];
  try {
    const password = decodeURIComponent(new URL(config.source.url).password);
    if (password) secrets.push(password);
  } catch {
    // An unparsable URL is reported when the database is reached; nothing to hide from it yet.
  }
  return secrets.filter((s) => s.length >= 4);
}

/** Expands `${VAR}` and `${VAR:-default}` in scalar strings (not in keys); `$${` stays a literal `${`. */
function expandEnvironment(
  doc: Document,
  env: NodeJS.ProcessEnv,
  problem: (path: (string | number)[], offset: number | undefined, message: string) => void,
): unknown {
  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        out[key] = walk(pair.value, [...path, key]);
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => walk(item, [...path, i]));
    if (isScalar(node)) {
      if (typeof node.value !== 'string') return node.value;
      const expanded = node.value.replace(
        /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
        (match, name, fallback) => {
          if (match === '$${') return '${';
          const value = env[name];
          if (value !== undefined && value !== '') return value;
          if (fallback !== undefined) return fallback;
          problem(
            path,
            node.range?.[0],
            `environment variable ${name} is not set (set it, or write \${${name}:-default})`,
          );
          return '';
        },
      );
      // `batch_size: ${BATCH_SIZE}` means a number, as if the value had been written there.
      if (expanded !== node.value && node.type === 'PLAIN') {
        const typed: unknown = parse(expanded);
        if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
      }
      return expanded;
    }
    return node ?? null;
  };
  return walk(doc.contents, []);
}

function describeIssue(
  issue: core.$ZodIssue,
  doc: Document,
  raw: unknown,
  position: (offset: number | undefined) => { line?: number; column?: number },
): ConfigProblem[] {
  const at = (path: PropertyKey[], key?: string) => position(nodeAt(doc, path, key)?.range?.[0]);
  const path = issue.path as (string | number)[];
  if (issue.code === 'invalid_union') {
    // Report the problems of the branch the user evidently meant (the one whose shape matches the value).
    const meant = issue.errors.find(
      (branch) => !branch.some((e) => e.code === 'invalid_type' && e.path.length === 0),
    );
    if (meant && meant.length > 0 && valueAt(raw, path) !== undefined) {
      return meant.flatMap((inner) =>
        describeIssue({ ...inner, path: [...path, ...inner.path] } as core.$ZodIssue, doc, raw, position),
      );
    }
  }
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(configSchema, path);
    return issue.keys.map((key) => {
      const suggestion = closest(key, known);
      return {
        path: formatPath([...path, key]),
        ...at(path, key),
        message:
          `unknown key ${JSON.stringify(key)}` +
          (suggestion
            ? `; did you mean ${JSON.stringify(suggestion)}?`
            : known.length
              ? `; expected one of ${known.join(', ')}`
              : ''),
      };
    });
  }
  return [{ path: formatPath(path), ...at(path), message: describeMessage(issue, valueAt(raw, path)) }];
}

function describeMessage(issue: core.$ZodIssue, found: unknown): string {
  if (issue.code === 'invalid_type') {
    if (found === undefined) return `is required (expected ${issue.expected})`;
    return `expected ${issue.expected}, found ${describeValue(found)}`;
  }
  if (issue.code === 'invalid_union' && found === undefined) return 'is required';
  return issue.message;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let value = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

/** The YAML node at a path (the key's node when `key` is given), or the nearest ancestor that exists. */
function nodeAt(doc: Document, path: PropertyKey[], key?: string): Node | undefined {
  let node: unknown = doc.contents;
  let found: Node | undefined = doc.contents ?? undefined;
  for (const step of [...path, ...(key === undefined ? [] : [key])]) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(step));
      if (!pair) break;
      if (step === key && key !== undefined && isScalar(pair.key)) return pair.key;
      node = pair.value;
      found = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof step === 'number') {
      node = node.items[step];
      if (!node) break;
      found = node as Node;
    } else break;
  }
  return found;
}

/** The keys an object schema accepts at a path, for "did you mean" suggestions. */
function knownKeys(schema: z.ZodType, path: (string | number)[]): string[] {
  const objects = schemasAt(schema, path).filter((s): s is z.ZodObject => s instanceof z.ZodObject);
  return [...new Set(objects.flatMap((o) => Object.keys(o.shape)))];
}

function schemasAt(schema: z.ZodType, path: (string | number)[]): z.ZodType[] {
  const inner = unwrap(schema);
  if (path.length === 0) return inner;
  const [step, ...rest] = path;
  return inner.flatMap((s) => {
    if (s instanceof z.ZodObject && typeof step === 'string') {
      const child = (s.shape as Record<string, z.ZodType>)[step];
      return child ? schemasAt(child, rest) : [];
    }
    if (s instanceof z.ZodArray && typeof step === 'number') return schemasAt(s.element as z.ZodType, rest);
    if (s instanceof z.ZodRecord) return schemasAt(s.valueType as z.ZodType, rest);
    return [];
  });
}

function unwrap(schema: z.ZodType): z.ZodType[] {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodNullable) {
    return unwrap(schema.unwrap() as z.ZodType);
  }
  if (schema instanceof z.ZodUnion) return (schema.options as z.ZodType[]).flatMap(unwrap);
  if (schema instanceof z.ZodPipe) return unwrap(schema.in as z.ZodType);
  return [schema];
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((step, i) => (typeof step === 'number' ? `[${step}]` : i === 0 ? String(step) : `.${String(step)}`))
    .join('');
}
