// Regenerates config/sync.schema.json from the zod schema (run with `npm run schema`; a test checks it is current).
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../dist/config/jsonSchema.js';

writeFileSync(new URL('../config/sync.schema.json', import.meta.url), configJsonSchema());
console.log('wrote config/sync.schema.json');
