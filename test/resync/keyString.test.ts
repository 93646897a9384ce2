import { describe, expect, it } from 'vitest';
import { keyString } from '../../src/resync/keyString.js';

describe('keyString', () => {
  it('is the same whether a key value came typed or as text, in key column order', () => {
    expect(keyString({ b: 'x', a: 5 }, ['a', 'b'])).toBe(keyString({ a: '5', b: 'x' }, ['a', 'b']));
    expect(keyString({ id: '9007199254740993' }, ['id'])).toBe('["9007199254740993"]');
    expect(keyString({ ok: true }, ['ok'])).toBe(keyString({ ok: 'true' }, ['ok']));
  });

  it('keeps composite keys apart that would collide when concatenated', () => {
    expect(keyString({ a: '1,2', b: '3' }, ['a', 'b'])).not.toBe(keyString({ a: '1', b: '2,3' }, ['a', 'b']));
    expect(keyString({ a: null }, ['a'])).not.toBe(keyString({ a: 'null' }, ['a']));
  });
});
