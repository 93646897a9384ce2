import type { Transform } from '../config/schema.js';

/**
 * The `transform:` vocabulary of a field. Each is a pure function of text; they are locale-independent so
 * that a daemon's output does not depend on the machine it runs on.
 */
export const transforms: Readonly<Record<Transform, (text: string) => string>> = {
  trim: (text) => text.trim(),
  lower: (text) => text.toLowerCase(),
  upper: (text) => text.toUpperCase(),
  title,
  first_word: (text) => words(text)[0] ?? '',
  rest_words: (text) => words(text).slice(1).join(' '),
  last_word: (text) => words(text).at(-1) ?? '',
  digits: (text) => text.replace(/[^0-9]/g, ''),
};

export function applyTransforms(text: string, names: Transform | readonly Transform[] | undefined): string {
  if (names === undefined) return text;
  const list: readonly Transform[] = typeof names === 'string' ? [names] : names;
  return list.reduce((value, name) => transforms[name](value), text);
}

/** Words are separated by any Unicode white space, runs of it counting as one. */
function words(text: string): string[] {
  return text.split(/\s+/u).filter((word) => word !== '');
}

/**
 * "JEAN-PIERRE o'neil" → "Jean-Pierre O'neil". A word starts at a letter that does not follow a letter, mark,
 * digit or apostrophe (so "John's" does not become "John'S"). A letter whose capital is several letters
 * (ß → SS) is kept as it is: expanding it would make the transform change its own output when applied again.
 */
function title(text: string): string {
  return text.toLowerCase().replace(/(?<![\p{L}\p{M}\p{N}'’])\p{L}/gu, (letter) => {
    const capital = letter.toUpperCase();
    return Array.from(capital).length === 1 ? capital : letter;
  });
}
