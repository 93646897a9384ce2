import { readFileSync, statSync } from 'node:fs';
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parse,
  parseDocument,
  type YAMLError,
  type YAMLMap,
} from 'yaml';
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
  return parseConfig(readConfigText(file), file, env);
}

/** A configuration is a few kB; a file this large is the wrong file, and reading it would only cost memory. */
const MAX_CONFIG_BYTES = 10 * 1024 * 1024;

function readConfigText(file: string): string {
  const cannotRead = (reason: string) =>
    new ConfigError(file, [
      {
        path: '',
        message: `cannot read the configuration (${reason}); pass --config PATH or set VERBOSE_SYNC_CONFIG`,
      },
    ]);
  let text: string;
  try {
    const stats = statSync(file);
    if (stats.isDirectory()) throw cannotRead('it is a directory; name the YAML file itself');
    if (stats.size > MAX_CONFIG_BYTES) {
      throw cannotRead(
        `it is ${megabytes(stats.size)}, more than a configuration can be (${megabytes(MAX_CONFIG_BYTES)}): is it the right file?`,
      );
    }
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw cannotRead(readFailure(error));
  }
  if (text.includes('\u0000')) throw cannotRead('it is not text (it holds NUL bytes): is it the right file?');
  return text;
}

function readFailure(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied: the user running verbose-sync may not read it';
    case 'EISDIR':
      return 'it is a directory; name the YAML file itself';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    default:
      return code ?? message;
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lines = new LineCounter();
  // Merge keys (`<<: *defaults`) are YAML 1.1, but users of anchors expect them.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const position = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };

  const [firstError] = doc.errors;
  if (firstError) {
    // Later YAML errors are mostly echoes of the first one.
    throw new ConfigError(file, [
      { ...position(firstError.pos[0]), ...describeYamlError(firstError, doc, text, lines) },
    ]);
  }

  const envProblems: ConfigProblem[] = [];
  const { value: raw, expanded } = expandEnvironment(doc, env, (path, offset, message) =>
    envProblems.push({ path: formatPath(path), ...position(offset), message }),
  );
  if (envProblems.length > 0) throw new ConfigError(file, distinctProblems(envProblems));
  if (raw === null || raw === undefined) {
    throw new ConfigError(file, [
      { path: '', message: 'the file is empty (or only comments); start from sync.example.yaml' },
    ]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    // What the file holds is not repeated: it may be a secret passed as --config by mistake.
    const holds = Array.isArray(raw) ? 'a list' : `a single ${typeof raw === 'string' ? 'string' : 'value'}`;
    throw new ConfigError(file, [
      {
        path: '',
        ...position(doc.contents?.range?.[0]),
        message: `the file is ${holds}, not a mapping of settings (source:, verbose:, mappings:); start from sync.example.yaml`,
      },
    ]);
  }

  let parsed = configSchema.safeParse(raw);
  // `api_key: ${VERBOSE_API_KEY}` with a key of digits reads as a number; where text is wanted, the text is meant.
  if (!parsed.success && restoreExpandedText(parsed.error.issues, raw, expanded)) {
    parsed = configSchema.safeParse(raw);
  }
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) =>
      describeIssue(issue, doc, raw, position, expanded),
    );
    throw new ConfigError(file, withoutEchoes(problems));
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

/** A scalar made from environment variables. */
interface Expansion {
  names: string[];
  /** Its text after expansion (a plain scalar may then have been read as a number or boolean). */
  text: string;
}

/** Anchors may be reused freely, but not to expand a small file into a huge document ("billion laughs"). */
const MAX_ALIAS_EXPANSIONS = 10_000;

/**
 * Expands `${VAR}` and `${VAR:-default}` in scalar strings (not in keys); `$${` stays a literal `${`. Aliases
 * and `<<` merge keys are resolved on the way. `expanded` records, by path, the scalars made from variables, so
 * messages about them name the variable instead of repeating its value.
 */
function expandEnvironment(
  doc: Document,
  env: NodeJS.ProcessEnv,
  problem: (path: (string | number)[], offset: number | undefined, message: string) => void,
): { value: unknown; expanded: Map<string, Expansion> } {
  const expanded = new Map<string, Expansion>();
  let aliases = 0;
  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (target === undefined) {
        problem(
          path,
          node.range?.[0],
          `the alias *${node.source} names no anchor; define &${node.source} before using it`,
        );
        return null;
      }
      aliases += 1;
      if (aliases > MAX_ALIAS_EXPANSIONS) {
        if (aliases === MAX_ALIAS_EXPANSIONS + 1) {
          problem(path, node.range?.[0], `aliases expand to more than ${MAX_ALIAS_EXPANSIONS} copies`);
        }
        return null;
      }
      return walk(target, path);
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const merges: { value: unknown; offset: number | undefined }[] = [];
      for (const pair of node.items) {
        // With merge keys on, `<<` is read as a symbol; its mappings fill in the keys not written here.
        if (isScalar(pair.key) && typeof pair.key.value === 'symbol') {
          merges.push({ value: walk(pair.value, path), offset: pair.key.range?.[0] });
          continue;
        }
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        out[key] = walk(pair.value, [...path, key]);
      }
      for (const { value, offset } of merges) {
        for (const source of Array.isArray(value) ? value : [value]) {
          if (source === null || typeof source !== 'object' || Array.isArray(source)) {
            problem(
              path,
              offset,
              '<< merges mappings: give it an alias of a mapping (<<: *name) or a list of them',
            );
            continue;
          }
          for (const [key, item] of Object.entries(source)) if (!Object.hasOwn(out, key)) out[key] = item;
        }
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => walk(item, [...path, i]));
    if (isScalar(node)) {
      if (typeof node.value !== 'string') return node.value;
      const names: string[] = [];
      const text = node.value.replace(
        /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g,
        (match, name: string | undefined, fallback: string | undefined) => {
          if (match === '$${') return '${';
          if (name === undefined) {
            problem(
              path,
              node.range?.[0],
              'an unfinished variable: write ${NAME} or ${NAME:-default}, or $${ for a literal "${"',
            );
            return match;
          }
          names.push(name);
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
      if (names.length === 0) return text;
      expanded.set(formatPath(path), { names, text });
      // `batch_size: ${BATCH_SIZE}` means a number, as if the value had been written there.
      if (node.type === 'PLAIN') {
        const typed: unknown = parse(text);
        if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
      }
      return text;
    }
    return node ?? null;
  };
  return { value: walk(doc.contents, []), expanded };
}

/** Puts back the text of expanded variables that were read as numbers where the schema wants text. */
function restoreExpandedText(
  issues: readonly core.$ZodIssue[],
  raw: unknown,
  expanded: Map<string, Expansion>,
): boolean {
  let restored = false;
  for (const issue of issues) {
    const path = issue.path as (string | number)[];
    const expansion = expanded.get(formatPath(path));
    const parent = valueAt(raw, path.slice(0, -1));
    const key = path.at(-1);
    if (
      issue.code === 'invalid_type' &&
      issue.expected === 'string' &&
      expansion &&
      key !== undefined &&
      parent !== null &&
      typeof parent === 'object'
    ) {
      (parent as Record<string | number, unknown>)[key] = expansion.text;
      restored = true;
    }
  }
  return restored;
}

/** The first YAML error, said with the key it concerns where that can be found. */
function describeYamlError(
  error: YAMLError,
  doc: Document,
  text: string,
  lines: LineCounter,
): { path: string; message: string } {
  const offset = error.pos[0];
  if (error.code === 'DUPLICATE_KEY') {
    const found = findPair(doc.contents, (pair) => isScalar(pair.key) && pair.key.range?.[0] === offset);
    if (found && isScalar(found.pair.key)) {
      const key = String(found.pair.key.value);
      const first = found.map.items.find(
        (pair) => pair !== found.pair && isScalar(pair.key) && String(pair.key.value) === key,
      );
      const firstAt = isScalar(first?.key) ? first.key.range?.[0] : undefined;
      const also = firstAt === undefined ? '' : ` (also on line ${lines.linePos(firstAt).line})`;
      return {
        path: formatPath([...found.path, key]),
        message: `the key ${JSON.stringify(key)} is given twice in one mapping${also}; keep one`,
      };
    }
  }
  if (error.code === 'TAB_AS_INDENT') {
    return {
      path: pathOfLine(text, lines.linePos(offset).line),
      message: 'invalid YAML: this line is indented with a tab; YAML indents with spaces only',
    };
  }
  return { path: '', message: `invalid YAML: ${error.message.split('\n')[0]}` };
}

/**
 * The key path of the key on a tab-indented line: found by reading the file again with its indenting tabs as
 * spaces (only to name the key; the file itself is refused).
 */
function pathOfLine(text: string, line: number): string {
  for (const width of [2, 4, 8]) {
    const spaced = text.replace(/^[ \t]+/gm, (indent) => indent.replaceAll('\t', ' '.repeat(width)));
    const lines = new LineCounter();
    const doc = parseDocument(spaced, { lineCounter: lines, merge: true });
    if (doc.errors.length > 0) continue;
    const found = findPair(
      doc.contents,
      (pair) => isScalar(pair.key) && lines.linePos(pair.key.range?.[0] ?? -1).line === line,
    );
    if (found && isScalar(found.pair.key)) return formatPath([...found.path, String(found.pair.key.value)]);
  }
  return '';
}

/** The first pair (depth first, aliases not followed) that passes `test`, with the path of its mapping. */
function findPair(
  node: unknown,
  test: (pair: Pair) => boolean,
  path: (string | number)[] = [],
): { path: (string | number)[]; map: YAMLMap; pair: Pair } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (test(pair)) return { path, map: node, pair };
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const found = findPair(pair.value, test, [...path, key]);
      if (found) return found;
    }
  }
  if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      const found = findPair(item, test, [...path, index]);
      if (found) return found;
    }
  }
  return undefined;
}

function distinctProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}:${p.column}:${p.path}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A problem that also explains why a required key is missing (the unknown key is that key misspelt). */
type DescribedProblem = ConfigProblem & { explains?: string };

/** Drops "is required" problems that an unknown-key problem already explains: one mistake, one message. */
function withoutEchoes(problems: DescribedProblem[]): ConfigProblem[] {
  const explained = new Set(problems.flatMap((p) => (p.explains === undefined ? [] : [p.explains])));
  return distinctProblems(
    problems
      .filter((p) => !(explained.has(p.path) && p.message.startsWith('is required')))
      .map(({ explains: _, ...problem }) => problem),
  );
}

function describeIssue(
  issue: core.$ZodIssue,
  doc: Document,
  raw: unknown,
  position: (offset: number | undefined) => { line?: number; column?: number },
  expanded: Map<string, Expansion>,
): DescribedProblem[] {
  const at = (path: PropertyKey[], key?: string) => position(nodeAt(doc, path, key)?.range?.[0]);
  const path = issue.path as (string | number)[];
  if (issue.code === 'invalid_union') {
    // Report the problems of the branch the user evidently meant: one whose shape fits the value (its problems
    // lie inside it), else one of the value's type.
    const misfit = (e: core.$ZodIssue) =>
      e.path.length === 0 &&
      (e.code === 'invalid_type' || e.code === 'invalid_union' || e.code === 'invalid_value');
    const meant =
      issue.errors.find((branch) => branch.length > 0 && !branch.some(misfit)) ??
      issue.errors.find((branch) => !branch.some((e) => e.code === 'invalid_type' && e.path.length === 0));
    if (meant && meant.length > 0 && valueAt(raw, path) !== undefined) {
      return meant.flatMap((inner) =>
        describeIssue(
          { ...inner, path: [...path, ...inner.path] } as core.$ZodIssue,
          doc,
          raw,
          position,
          expanded,
        ),
      );
    }
  }
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(configSchema, path);
    const value = valueAt(raw, path);
    const missing = requiredKeys(configSchema, path).filter(
      (key) => !(value !== null && typeof value === 'object' && Object.hasOwn(value, key)),
    );
    // One unknown key where one required key is missing: most likely that key, misspelt or misplaced.
    const instead = issue.keys.length === 1 && missing.length === 1 ? missing[0] : undefined;
    // A where condition's only key is `not`: an unknown key there is SQL written as YAML (`in:`, `eq:`…).
    const isCondition = known.length === 1 && known[0] === 'not';
    return issue.keys.map((key) => {
      const suggestion = isCondition ? undefined : closest(key, known);
      const explains = suggestion !== undefined && missing.includes(suggestion) ? suggestion : instead;
      let message = `unknown key ${JSON.stringify(key)}`;
      if (isCondition) {
        return {
          path: formatPath([...path, key]),
          ...at(path, key),
          message: `${message}: a condition is a value (equal), a list of values (one of), null (is null) or { not: … }`,
          ...(explains === undefined ? {} : { explains: formatPath([...path, explains]) }),
        };
      }
      if (suggestion) message += `; did you mean ${JSON.stringify(suggestion)}?`;
      else if (known.length) message += `; expected one of ${known.join(', ')}`;
      if (explains !== undefined && explains !== suggestion) {
        message += ` (${JSON.stringify(explains)} is required and missing)`;
      }
      return {
        path: formatPath([...path, key]),
        ...at(path, key),
        message,
        ...(explains === undefined ? {} : { explains: formatPath([...path, explains]) }),
      };
    });
  }
  const found = valueAt(raw, path);
  const expansion = expanded.get(formatPath(path));
  let message = describeMessage(issue, found, path, expansion);
  if (expansion && !message.includes('${')) message += ` (the value comes from ${variables(expansion)})`;
  return [{ path: formatPath(path), ...at(path), message }];
}

const TYPE_NAMES: Record<string, string> = { object: 'mapping', record: 'mapping', array: 'list' };

function describeMessage(
  issue: core.$ZodIssue,
  found: unknown,
  path: (string | number)[],
  expansion: Expansion | undefined,
): string {
  const isDuration = /_ms$/.test(String(path.at(-1) ?? ''));
  const shown = () => describeValue(found, path, expansion);
  if (issue.code === 'invalid_type') {
    const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
    if (found === undefined) return `is required (expected ${expected})`;
    if (issue.expected === 'array' && found !== null && typeof found === 'object') {
      return 'expected a list (each item starts with "- "), found a mapping';
    }
    if (isDuration && issue.expected === 'number') {
      return `expected a number of milliseconds (e.g. 5000), found ${shown()}`;
    }
    return `expected ${expected}, found ${shown()}`;
  }
  if (issue.code === 'invalid_union') {
    if (found === undefined) return 'is required';
    // zod's own text for a union says nothing; name what each branch takes.
    if (issue.message === 'Invalid input') {
      const expected = issue.errors.flatMap((branch) =>
        branch.flatMap((e) =>
          e.code === 'invalid_type' && e.path.length === 0 ? [TYPE_NAMES[e.expected] ?? e.expected] : [],
        ),
      );
      const names = [...new Set(expected)];
      if (names.length > 0) {
        const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
        return `expected ${list}, found ${shown()}`;
      }
    }
  }
  if ((issue.code === 'too_small' || issue.code === 'too_big') && /^Too (small|big)\b/.test(issue.message)) {
    return describeRange(issue, found, isDuration, expansion);
  }
  // A message that quotes the value names the variable instead when the value came from one.
  return expansion
    ? issue.message.replaceAll(JSON.stringify(expansion.text), variables(expansion))
    : issue.message;
}

function describeRange(
  issue: core.$ZodIssueTooSmall | core.$ZodIssueTooBig,
  found: unknown,
  isDuration: boolean,
  expansion: Expansion | undefined,
): string {
  const small = issue.code === 'too_small';
  const limit = String(small ? issue.minimum : issue.maximum);
  const value = expansion ? `the value of ${variables(expansion)}` : String(found);
  switch (issue.origin) {
    case 'number':
    case 'int': {
      const unit = isDuration ? ' ms' : '';
      const bound = small
        ? issue.inclusive === false
          ? `more than ${limit}${unit}`
          : `${limit}${unit} or more`
        : issue.inclusive === false
          ? `less than ${limit}${unit}`
          : `at most ${limit}${unit}`;
      return `must be ${bound}, found ${value}`;
    }
    case 'string':
      if (small && limit === '1') return 'must not be empty';
      return small ? `must be at least ${limit} characters long` : `must be at most ${limit} characters long`;
    case 'array':
      return small
        ? `needs at least ${limit} item${limit === '1' ? '' : 's'}`
        : `takes at most ${limit} items`;
    default:
      return issue.message;
  }
}

function variables(expansion: Expansion): string {
  return expansion.names.map((name) => `\${${name}}`).join(', ');
}

/** A value as a message may show it: never a value that came from a variable, nor one that may be a secret. */
function describeValue(value: unknown, path: (string | number)[], expansion?: Expansion): string {
  if (value === null) return 'nothing (an empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (expansion)
    return `${typeof value === 'string' ? 'text' : `a ${typeof value}`} from ${variables(expansion)}`;
  const key = String(path.at(-1) ?? '');
  if (
    typeof value === 'string' &&
    (value.length > 40 || /[:@]/.test(value) || /key|url|password/i.test(key))
  ) {
    return 'a string';
  }
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
    if (isAlias(node)) node = node.resolve(doc);
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

/** The keys an object schema at a path cannot do without. */
function requiredKeys(schema: z.ZodType, path: (string | number)[]): string[] {
  const objects = schemasAt(schema, path).filter((s): s is z.ZodObject => s instanceof z.ZodObject);
  const required = objects.flatMap((o) =>
    Object.entries(o.shape as Record<string, z.ZodType>)
      .filter(([, field]) => !(field instanceof z.ZodOptional || field instanceof z.ZodDefault))
      .map(([key]) => key),
  );
  return [...new Set(required)];
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
