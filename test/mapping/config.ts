import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

/** A whole configuration around a `mappings:` fragment, parsed exactly as `sync.yaml` would be. */
export function configWithMappings(fragment: string, defaultCountry = 'US'): Config {
  const text = [
    'source:',
    '  url: postgres://crm@localhost:5432/crm',
    'verbose:',
    '  api_key: as_live_test',
    'phone:',
    `  default_country: ${defaultCountry}`,
    fragment,
  ].join('\n');
  return parseConfig(text, 'sync.yaml', {}).config;
}

export function readyMapping(name: 'odoo' | 'twenty' | 'suitecrm'): string {
  return readFileSync(new URL(`../../config/mappings/${name}.yaml`, import.meta.url), 'utf8');
}
