import { z } from 'zod';
import { configSchema } from './schema.js';

/** The JSON Schema of `sync.yaml` as a user writes it (defaults make keys optional), for editors. */
export function configJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ ...schema, title: 'verbose-sync configuration (sync.yaml)' }, null, 2)}\n`;
}
