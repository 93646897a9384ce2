// Regenerates config/sync.schema.json and the README's key table from the zod schema (`npm run schema`);
// a test checks both are current.
import { readFileSync, writeFileSync } from 'node:fs';
import { configJsonSchema } from '../dist/config/jsonSchema.js';
import { configReference, withReference } from '../dist/config/reference.js';

writeFileSync(new URL('../config/sync.schema.json', import.meta.url), configJsonSchema());
const readme = new URL('../README.md', import.meta.url);
writeFileSync(readme, withReference(readFileSync(readme, 'utf8'), configReference()));
console.log('wrote config/sync.schema.json and the README configuration table');
