import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * The README's table of every config key, generated from the zod schema (`npm run schema` rewrites the
 * README between its markers; a test checks it is current).
 */
export function configReference(): string {
  const rows: string[] = ['| key | default | description |', '| --- | --- | --- |'];
  walk(configSchema, '', rows);
  return rows.join('\n');
}

function walk(schema: z.ZodType, path: string, rows: string[]): void {
  const { inner, fallback } = unwrap(schema);
  const description = schema.description ?? inner.description ?? '';
  if (inner instanceof z.ZodObject) {
    if (path && !path.endsWith('[]')) rows.push(row(path, fallback, description));
    for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
      walk(child, path ? `${path}.${key}` : key, rows);
    }
    return;
  }
  if (inner instanceof z.ZodArray && unwrap(inner.element as z.ZodType).inner instanceof z.ZodObject) {
    rows.push(row(path, fallback, description));
    walk(inner.element as z.ZodType, `${path}[]`, rows);
    return;
  }
  rows.push(row(path, fallback, description));
}

function row(path: string, fallback: unknown, description: string): string {
  const shown = fallback === undefined || typeof fallback === 'object' ? '' : `\`${String(fallback)}\``;
  return `| \`${path}\` | ${shown} | ${description.replaceAll('|', '\\|')} |`;
}

function unwrap(schema: z.ZodType): { inner: z.ZodType; fallback: unknown } {
  let inner = schema;
  let fallback: unknown;
  for (;;) {
    if (inner instanceof z.ZodDefault) {
      fallback ??= (inner.def as { defaultValue: unknown }).defaultValue;
      inner = inner.unwrap() as z.ZodType;
    } else if (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) {
      inner = inner.unwrap() as z.ZodType;
    } else if (inner instanceof z.ZodPipe) {
      inner = inner.in as z.ZodType;
    } else return { inner, fallback };
  }
}

const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';

/** The README text with the generated table placed between its markers. */
export function withReference(readme: string, table: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${START} … ${END} markers`);
  return `${readme.slice(0, start + START.length)}\n${table}\n${readme.slice(end)}`;
}
