import type { JsonValue } from '../domain.js';

/**
 * Longest value sent to Verbose, in code points. Verbose documents no limit; 255 is what CRMs allow in their
 * name columns, and it keeps a 500-contact request well under the body caps of serverless hosts even when a
 * notes column is mapped by mistake.
 */
export const MAX_VALUE_LENGTH = 255;

/** A column value as text: numbers and booleans as written in SQL, json as its JSON text, null as "". */
export function textOf(value: JsonValue): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Removes control characters, which Verbose would store and SMS templates would print. Tabs and line breaks
 * become spaces so that "Jean\nPaul" stays two words.
 */
export function stripControlCharacters(text: string): string {
  return text.replace(/[\t\n\v\f\r\u0085]/g, ' ').replace(/\p{Cc}/gu, '');
}

export function isBlank(text: string): boolean {
  return text.trim() === '';
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * Keeps at most `max` code points, cut between characters as a reader sees them (a letter with its accents, an
 * emoji with its joiners stay whole), and drops the white space the cut leaves at the end.
 */
export function truncate(text: string, max = MAX_VALUE_LENGTH): string {
  if (text.length <= max) return text;
  let points = 0;
  let end = 0;
  for (const { segment, index } of graphemes.segment(text)) {
    const size = codePoints(segment);
    if (points + size > max) break;
    points += size;
    end = index + segment.length;
  }
  // One character longer than the limit (a letter under hundreds of combining marks) is cut inside.
  const cut = end > 0 ? text.slice(0, end) : Array.from(text).slice(0, max).join('');
  return cut.trimEnd();
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}
