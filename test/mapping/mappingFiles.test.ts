import { describe, expect, it } from 'vitest';
import { configWithMappings, readyMapping } from './config.js';

describe('ready-made mappings in config/mappings', () => {
  it.each(['odoo', 'twenty', 'suitecrm'] as const)('%s.yaml is a valid mappings fragment', (name) => {
    const config = configWithMappings(readyMapping(name));
    expect(config.mappings).toHaveLength(1);
    expect(config.mappings[0]?.fields.phone).toBeDefined();
  });
});
