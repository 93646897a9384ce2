import {
  type CountryCode,
  isSupportedCountry,
  ParseError,
  type PhoneNumber,
  parsePhoneNumberWithError,
  validatePhoneNumberLength,
} from 'libphonenumber-js/max';
import { isBlank } from './text.js';

/**
 * Phone numbers become E.164, the only spelling Verbose accepts without guessing, so that one person is one
 * Verbose contact however the CRM wrote the number.
 *
 * Validity uses libphonenumber's `max` metadata: it checks the digits against each country's numbering plan,
 * not only the length (which is all the default `min` metadata can do). A number that is the right length but
 * cannot exist (a typo, an unassigned area code, the fictional `(555) 123-4567`) is rejected here with its
 * reason instead of being accepted by Verbose and failing at send time. The cost is 65 kB of metadata, loaded
 * once. Note that the 555-0100…0199 numbers reserved for fiction are *valid* in real area codes
 * (`+1 212 555 0123` passes), while area code 555 does not exist (`(555) 123-4567` is rejected).
 */
export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: string };

type ParseOptions = { defaultCountry: CountryCode } | { defaultCallingCode: string };

/** Distinct inputs remembered per generation; the previous generation is kept too, so 2× at most. */
const MEMO_GENERATION = 8_192;
let recentResults = new Map<string, PhoneResult>();
let olderResults = new Map<string, PhoneResult>();

/**
 * @param raw the phone as written in the CRM
 * @param country where the CRM says the phone is from: an ISO code (`FR`) or a calling code (`+33`, `33`);
 *   only used for numbers written without their country code. Blank means `defaultCountry`.
 * @param defaultCountry `phone.default_country`
 *
 * Results are memoised for the phones seen last: libphonenumber's validity check costs about 10 µs a number
 * (measured), as much as the rest of the pipeline, and a burst rewrites the same people over and over.
 */
export function normalisePhone(
  raw: string,
  country: string | undefined,
  defaultCountry: string,
): PhoneResult {
  const key = `${defaultCountry}\u0000${country ?? ''}\u0000${raw}`;
  let result = recentResults.get(key);
  if (result !== undefined) return result;
  result = olderResults.get(key) ?? normaliseOnce(raw, country, defaultCountry);
  if (recentResults.size >= MEMO_GENERATION) {
    olderResults = recentResults;
    recentResults = new Map();
  }
  recentResults.set(key, result);
  return result;
}

/** Already E.164: nothing for the checks below to find (no letters, extension, second number or prefix). */
const PLAIN_E164 = /^\+[1-9]\d{6,14}$/;

function normaliseOnce(raw: string, country: string | undefined, defaultCountry: string): PhoneResult {
  if (PLAIN_E164.test(raw)) {
    // The same path as below, without its string work: an international number ignores the assumed country.
    const assumed = resolveCountry(country !== undefined && !isBlank(country) ? country : defaultCountry);
    return parse(raw, assumed.ok ? assumed.options : { defaultCallingCode: '1' });
  }
  const text = raw
    .trim()
    .replace(/^tel:\s*/i, '')
    // "(+44) 20 7946 0958": the calling code in parentheses.
    .replace(/^\(\s*(\+\d{1,3})\s*\)/, '$1');
  if (text === '') return fail('empty');
  if (/^[[{]/.test(text)) return fail('JSON, not a phone number');
  if (!/\p{Nd}/u.test(text)) return fail('not a phone number');
  if (countNumbers(text) > 1) return fail('several numbers in one field; keep one number per column');
  // "+1+44 20 7946 0958": a calling code column glued to a number that already had its own.
  if (/\+.*\+/.test(text)) return fail('several "+" signs; write the country code once');
  // Vanity numbers (1-800-FLOWERS) are not converted: letters in a phone column are far more often notes
  // ("after 5pm", "ask for Ann") than keypad spelling, and a guessed number would text a stranger.
  if (/\p{L}/u.test(withoutExtension(text))) return fail('contains letters; write the number in digits');

  const international = /^\+|^0[\s.\-/]*0/.test(text);
  const assumed = resolveCountry(country !== undefined && !isBlank(country) ? country : defaultCountry);
  if (!assumed.ok && !international) return assumed;
  // An international number carries its own country: the placeholder calling code is never read.
  const options: ParseOptions = assumed.ok ? assumed.options : { defaultCallingCode: '1' };

  // 00 is the international prefix nearly everywhere, but not in the NANP (US, CA…), whose rules would read
  // "0044 20…" as a national number; no national number starts with 00, so read it as "+" everywhere.
  const spelling = text.replace(/^0[\s.\-/]*0/, '+');
  const first = parse(spelling, options);
  if (first.ok) return first;
  // 011 is the NANP's international prefix; elsewhere it can start a national number (0113 is Leeds), so it
  // is read as "+" only when the national reading fails.
  if (/^0[\s.\-/]*1[\s.\-/]*1/.test(spelling)) {
    const second = parse(spelling.replace(/^0[\s.\-/]*1[\s.\-/]*1/, '+'), options);
    if (second.ok) return second;
  }
  return first;
}

/** The extension is dropped: Verbose stores one dialable number, and SMS cannot reach an extension. */
function withoutExtension(text: string): string {
  return text.replace(/\s*(?:;\s*ext=|,|#|\b(?:ext|extn|extension)\b\.?:?|x)\s*\d{1,7}\s*$/i, '');
}

/**
 * How many numbers a field holds: pieces between separators (/ ; , | & "or" "and" +) that have at least seven
 * digits each. "030/901820" and "212-555-0123,45" (extension) are one number; "+33 6 12 34 56 78 / +33 6 98 76
 * 54 32" is two, and picking one of them silently could text the wrong person.
 */
function countNumbers(text: string): number {
  return text
    .split(/[/;,|&+\n]|\b(?:or|and|ou|et|oder|und|y|o)\b/iu)
    .filter((piece) => (piece.match(/\p{Nd}/gu)?.length ?? 0) >= 7).length;
}

function resolveCountry(
  country: string,
): { ok: true; options: ParseOptions } | { ok: false; reason: string } {
  const code = country.trim();
  if (/^[A-Za-z]{2}$/.test(code)) {
    const iso = code.toUpperCase() === 'UK' ? 'GB' : code.toUpperCase();
    if (isSupportedCountry(iso)) return { ok: true, options: { defaultCountry: iso } };
  }
  const calling = code.match(/^(?:\+|00)?\s*(\d{1,3})$/);
  if (calling?.[1] !== undefined) return { ok: true, options: { defaultCallingCode: calling[1] } };
  return fail(
    `unknown phone country ${JSON.stringify(code)}; expected an ISO code such as FR or a calling code such as +33`,
  );
}

function parse(text: string, options: ParseOptions): PhoneResult {
  let number: PhoneNumber;
  try {
    number = parsePhoneNumberWithError(text, { ...options, extract: false });
  } catch (error) {
    return fail(describeParseError(error, options));
  }
  if (number.isValid()) return { ok: true, e164: number.number };
  const region =
    number.country ??
    ('defaultCountry' in options && !text.startsWith('+')
      ? options.defaultCountry
      : `+${number.countryCallingCode}`);
  switch (validatePhoneNumberLength(number.number)) {
    case 'TOO_SHORT':
      return fail(`too short for ${region}`);
    case 'TOO_LONG':
      return fail(`too long for ${region}`);
    case 'INVALID_LENGTH':
      return fail(`wrong number of digits for ${region}`);
    default:
      return fail(`not a valid number for ${region}`);
  }
}

function describeParseError(error: unknown, options: ParseOptions): string {
  const message = error instanceof Error ? error.message : '';
  // libphonenumber reports an unknown default calling code with a plain Error, not a ParseError.
  if ('defaultCallingCode' in options && /calling code/i.test(message)) {
    return `unknown phone country "+${options.defaultCallingCode}"; no country has this calling code`;
  }
  if (!(error instanceof ParseError)) return 'not a phone number';
  switch (message) {
    case 'TOO_SHORT':
      return 'too short';
    case 'TOO_LONG':
      return 'too long';
    case 'INVALID_COUNTRY':
      return 'unknown country calling code';
    default:
      return 'not a phone number';
  }
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
