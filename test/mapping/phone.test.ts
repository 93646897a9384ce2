import fc from 'fast-check';
import { type CountryCode, getCountries, getExampleNumber } from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/mobile/examples';
import { describe, expect, it } from 'vitest';
import { normalisePhone } from '../../src/mapping/phone.js';

const e164 = (raw: string, country?: string, defaultCountry = 'US') => {
  const result = normalisePhone(raw, country, defaultCountry);
  return result.ok ? result.e164 : `rejected: ${result.reason}`;
};
const reason = (raw: string, country?: string, defaultCountry = 'US') => {
  const result = normalisePhone(raw, country, defaultCountry);
  return result.ok ? `accepted as ${result.e164}` : result.reason;
};

describe('normalisePhone', () => {
  it('reads national and international spellings of one US number as one E.164 number', () => {
    for (const raw of [
      '(212) 555-0123',
      '212.555.0123',
      '212-555-0123',
      '2125550123',
      '1 (212) 555-0123',
      '+1 212 555 0123',
      '+1 (212) 555-0123',
      ' +12125550123 ',
      'tel:+1-212-555-0123',
      '２１２-５５５-０１２３',
    ]) {
      expect(e164(raw), raw).toBe('+12125550123');
    }
  });

  it('accepts the 555-01xx numbers reserved for fiction in real area codes, but not area code 555', () => {
    expect(e164('+1 212 555 0199')).toBe('+12125550199');
    for (const raw of ['(555) 123-4567', '555.123.4567', '+1 555 123 4567']) {
      expect(reason(raw), raw).toMatch(/^not a valid number for (US|\+1)$/);
    }
  });

  it('drops an extension and keeps the number', () => {
    for (const raw of [
      '+1 212-555-0123 ext. 45',
      '212-555-0123 x45',
      '212.555.0123 #45',
      '(212) 555-0123 extension 45',
      '212-555-0123;ext=45',
      '212-555-0123,45',
    ]) {
      expect(e164(raw), raw).toBe('+12125550123');
    }
  });

  it('rejects vanity numbers and notes written with letters rather than guessing', () => {
    expect(reason('1-800-FLOWERS')).toBe('contains letters; write the number in digits');
    expect(reason('+1 212 555 0123 (mobile)')).toBe('contains letters; write the number in digits');
    expect(e164('1-800-356-9377')).toBe('+18003569377');
  });

  it('rejects a field holding several numbers instead of picking one', () => {
    for (const raw of [
      '+33 6 12 34 56 78 / +33 6 98 76 54 32',
      '06 12 34 56 78, 06 98 76 54 32',
      '212-555-0123 or 212-555-0199',
      '+33612345678 +33698765432',
      '212-555-0123; 212-555-0199',
    ]) {
      expect(reason(raw, undefined, 'FR'), raw).toMatch(/several numbers/);
    }
    expect(e164('030/901820', undefined, 'DE')).toBe('+4930901820');
  });

  it('reads a leading 00 as the international prefix, even where it is not (the US)', () => {
    expect(e164('0044 20 7946 0958')).toBe('+442079460958');
    expect(e164('00 44 20 7946 0958', undefined, 'FR')).toBe('+442079460958');
    expect(e164('0033 6 12 34 56 78', undefined, 'GB')).toBe('+33612345678');
  });

  it('reads 011 as the US international prefix, without breaking national numbers that start with 011', () => {
    expect(e164('011 44 20 7946 0958')).toBe('+442079460958');
    expect(e164('011 44 20 7946 0958', undefined, 'GB')).toBe('+442079460958');
    expect(e164('0113 243 3144', undefined, 'GB')).toBe('+441132433144');
  });

  it('reads numbers of many countries, nationally in their country and internationally anywhere', () => {
    const cases: [country: string, national: string, international: string, expected: string][] = [
      ['FR', '06 12 34 56 78', '+33 6 12 34 56 78', '+33612345678'],
      ['FR', '01 42 68 53 00', '+33 (0)1 42 68 53 00', '+33142685300'],
      ['GB', '020 7946 0958', '+44 20 7946 0958', '+442079460958'],
      ['GB', '07911 123456', '+44 7911 123456', '+447911123456'],
      ['DE', '030 901820', '+49 30 901820', '+4930901820'],
      ['DE', '0151 23456789', '+49 151 23456789', '+4915123456789'],
      ['IN', '098765 43210', '+91 98765 43210', '+919876543210'],
      ['BR', '(11) 91234-5678', '+55 11 91234-5678', '+5511912345678'],
      ['AU', '0412 345 678', '+61 412 345 678', '+61412345678'],
      ['AU', '(02) 9876 5432', '+61 2 9876 5432', '+61298765432'],
    ];
    for (const [country, national, international, expected] of cases) {
      expect(e164(national, country), `${country} ${national}`).toBe(expected);
      expect(e164(national, undefined, country), `default ${country} ${national}`).toBe(expected);
      expect(e164(international), international).toBe(expected);
    }
  });

  it('takes the country as an ISO code or a calling code, and ignores it for international numbers', () => {
    expect(e164('06 12 34 56 78', 'FR')).toBe('+33612345678');
    expect(e164('06 12 34 56 78', 'fr')).toBe('+33612345678');
    expect(e164('06 12 34 56 78', '+33')).toBe('+33612345678');
    expect(e164('612345678', '33')).toBe('+33612345678');
    expect(e164('020 7946 0958', 'UK')).toBe('+442079460958');
    expect(e164('+44 20 7946 0958', 'FR')).toBe('+442079460958');
    expect(e164('212 555 0123', '  ')).toBe('+12125550123');
  });

  it('rejects a national number whose country is not a country, rather than assume the default', () => {
    expect(reason('06 12 34 56 78', 'France')).toBe(
      'unknown phone country "France"; expected an ISO code such as FR or a calling code such as +33',
    );
    expect(reason('06 12 34 56 78', '999')).toBe(
      'unknown phone country "+999"; no country has this calling code',
    );
    expect(e164('+33 6 12 34 56 78', 'France')).toBe('+33612345678');
  });

  it('gives a short, specific reason for what is not a phone number', () => {
    expect(reason('')).toBe('empty');
    expect(reason(' \t ')).toBe('empty');
    expect(reason('n/a')).toBe('not a phone number');
    expect(reason('call me')).toBe('not a phone number');
    expect(reason('-')).toBe('not a phone number');
    expect(reason('{"number":"612345678","callingCode":"+33"}')).toBe('JSON, not a phone number');
    expect(reason('[{"number":"612345678"}]')).toBe('JSON, not a phone number');
    expect(reason('12')).toBe('too short for US');
    expect(reason('+33 6 12', undefined, 'FR')).toBe('too short for FR');
    expect(reason('+33 6 12 34 56 78 90 12')).toBe('too long for FR');
    expect(reason('020 7946 095', 'GB')).toBe('not a valid number for GB');
    expect(reason('+999 1234 5678')).toBe('unknown country calling code');
    expect(reason('+1+44 20 7946 0958')).toBe('several "+" signs; write the country code once');
  });

  describe('properties', () => {
    const countries = getCountries().filter((c) => getExampleNumber(c, examples) !== undefined);
    const example = fc.constantFrom(...countries).map((country) => ({
      country,
      number: getExampleNumber(country, examples)!,
    }));
    const anyCountry = fc.constantFrom<CountryCode>(...getCountries());

    it('normalising an E.164 result again gives itself, whatever the country', () => {
      fc.assert(
        fc.property(example, anyCountry, ({ number }, other) => {
          const once = e164(number.number, other);
          expect(once).toBe(number.number);
          expect(e164(once, undefined, other)).toBe(once);
        }),
      );
    });

    it('national, international, 00-prefixed and tel: spellings of one number give the same E.164', () => {
      fc.assert(
        fc.property(example, anyCountry, ({ country, number }, other) => {
          expect(e164(number.formatNational(), country)).toBe(number.number);
          expect(e164(number.formatInternational(), other)).toBe(number.number);
          expect(e164(`00${number.number.slice(1)}`, other)).toBe(number.number);
          expect(e164(number.getURI(), other)).toBe(number.number);
        }),
      );
    });

    it('spaces, dots and dashes anywhere between the digits do not change the number', () => {
      const separator = fc.constantFrom('', ' ', '-', '.', '  ', ' - ');
      fc.assert(
        fc.property(
          example,
          fc.array(separator, { minLength: 20, maxLength: 20 }),
          ({ country, number }, separators) => {
            const digits = [...number.formatNational().replace(/\D/g, '')];
            const spelled = digits.map((d, i) => `${d}${separators[i] ?? ''}`).join('');
            expect(e164(spelled, country)).toBe(number.number);
          },
        ),
      );
    });

    it('never throws, and gives either an E.164 number or a reason', () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.string({ unit: 'grapheme' }), fc.stringMatching(/^[+0-9 ()./x-]{0,25}$/)),
          fc.option(fc.oneof(anyCountry, fc.string({ maxLength: 4 })), { nil: undefined }),
          (raw, country) => {
            const result = normalisePhone(raw, country, 'US');
            if (result.ok) expect(result.e164).toMatch(/^\+[1-9]\d{1,14}$/);
            else expect(result.reason).not.toBe('');
          },
        ),
      );
    });
  });
});
