import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TRANSFORMS } from '../../src/config/schema.js';
import { applyTransforms, transforms } from '../../src/mapping/transforms.js';

const words = (text: string) => text.split(/\s+/u).filter((w) => w !== '');
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const spacedText = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
      fc.constantFrom(' ', '  ', '\t', '\u00a0', '\n'),
    ),
    {
      maxLength: 12,
    },
  )
  .map((parts) => parts.join(''));

describe('transforms', () => {
  it('has a function for every transform the configuration accepts', () => {
    expect(Object.keys(transforms).sort()).toEqual([...TRANSFORMS].sort());
  });

  it('splits a full name into first name and the rest', () => {
    expect(transforms.first_word('  Jean   Paul  Sartre ')).toBe('Jean');
    expect(transforms.rest_words('  Jean   Paul  Sartre ')).toBe('Paul Sartre');
    expect(transforms.last_word('  Jean   Paul  Sartre ')).toBe('Sartre');
    expect(transforms.first_word('Madonna')).toBe('Madonna');
    expect(transforms.rest_words('Madonna')).toBe('');
    expect(transforms.first_word('   ')).toBe('');
    expect(transforms.last_word('')).toBe('');
  });

  it('title-cases each word, across scripts, hyphens and apostrophes', () => {
    expect(transforms.title('JEAN-PIERRE DE LA FONTAINE')).toBe('Jean-Pierre De La Fontaine');
    expect(transforms.title("o'neil john's")).toBe("O'neil John's");
    expect(transforms.title('élodie ÇELIK')).toBe('Élodie Çelik');
    expect(transforms.title('άννα παπαδοπούλου')).toBe('Άννα Παπαδοπούλου');
    expect(transforms.title('ßtraße')).toBe('ßtraße');
  });

  it('keeps only the digits', () => {
    expect(transforms.digits('+1 (212) 555-0123')).toBe('12125550123');
  });

  it('changes case without depending on the locale', () => {
    expect(transforms.upper('istanbul')).toBe('ISTANBUL');
    expect(transforms.lower('İSTANBUL')).toBe('i̇stanbul');
  });

  it('applies a list of transforms in order', () => {
    expect(applyTransforms('  DUPONT jean ', ['last_word', 'title'])).toBe('Jean');
    expect(applyTransforms('  x ', 'trim')).toBe('x');
    expect(applyTransforms(' x ', undefined)).toBe(' x ');
  });

  it('title is idempotent', () => {
    fc.assert(fc.property(text, (s) => transforms.title(transforms.title(s)) === transforms.title(s)));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        expect(transforms.title(transforms.title(s))).toBe(transforms.title(s));
      }),
    );
  });

  it('first_word and rest_words put back together give the name with its spaces collapsed', () => {
    fc.assert(
      fc.property(spacedText, (s) => {
        const joined = [transforms.first_word(s), transforms.rest_words(s)].filter((w) => w !== '').join(' ');
        expect(joined).toBe(words(s).join(' '));
      }),
    );
  });

  it('last_word is the last of the words, and never contains white space', () => {
    fc.assert(
      fc.property(spacedText, (s) => {
        expect(transforms.last_word(s)).toBe(words(s).at(-1) ?? '');
        expect(transforms.last_word(s)).not.toMatch(/\s/u);
      }),
    );
  });

  it('digits gives only digits, all of those that were there, in order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const out = transforms.digits(s);
        expect(out).toMatch(/^[0-9]*$/);
        expect(out).toBe([...s].filter((c) => c >= '0' && c <= '9').join(''));
      }),
    );
  });

  it('every transform is idempotent except the word splitters', () => {
    const idempotent = ['trim', 'lower', 'upper', 'title', 'first_word', 'last_word', 'digits'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...idempotent), spacedText, (name, s) => {
        const once = transforms[name](s);
        expect(transforms[name](once)).toBe(once);
      }),
    );
  });
});
