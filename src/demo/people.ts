/**
 * Made-up people for the demo CRM, reproducible from a seed: names from a few countries, and phones written the
 * many ways people type them into a CRM (spaces, dots, brackets, with or without the country code).
 */

export type Country = 'FR' | 'US' | 'DE' | 'ES' | 'IT' | 'GB';

export interface Person {
  name: string;
  email: string;
  country: Country;
  city: string;
  /** The mobile as the CRM holds it (null: only a landline). */
  mobile: string | null;
  /** The landline as the CRM holds it. */
  phone: string | null;
}

const FIRST: Record<Country, string[]> = {
  FR: [
    'Amélie',
    'Lucas',
    'Chloé',
    'Hugo',
    'Léa',
    'Théo',
    'Manon',
    'Louis',
    'Inès',
    'Gabriel',
    'Zoé',
    'François',
  ],
  US: ['Emma', 'Liam', 'Olivia', 'Noah', 'Ava', 'Ethan', 'Mia', 'Mason', 'Harper', 'Logan', 'Ella', 'Caleb'],
  DE: ['Jürgen', 'Anna', 'Lukas', 'Lena', 'Maximilian', 'Hannah', 'Felix', 'Sophie', 'Jonas', 'Marie'],
  ES: ['José', 'Lucía', 'Alejandro', 'María', 'Pablo', 'Carmen', 'Álvaro', 'Paula', 'Sergio', 'Elena'],
  IT: ['Giulia', 'Matteo', 'Sofia', 'Lorenzo', 'Aurora', 'Francesco', 'Chiara', 'Niccolò', 'Martina'],
  GB: ['Oliver', 'Amelia', 'George', 'Isla', 'Harry', 'Siobhán', 'Jack', 'Poppy', 'Alfie', 'Freya'],
};

const LAST: Record<Country, string[]> = {
  FR: ['Durand', 'Martin', 'Bernard', 'Petit', 'Lefèvre', 'Moreau', 'Girard', 'Roux', 'Fournier', 'Lambert'],
  US: ['Smith', 'Johnson', 'Williams', 'Brown', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Wilson', 'Taylor'],
  DE: ['Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Becker', 'Wagner', 'Hoffmann', 'Schäfer'],
  ES: ['García', 'Fernández', 'González', 'Rodríguez', 'López', 'Martínez', 'Sánchez', 'Pérez', 'Núñez'],
  IT: ['Rossi', 'Russo', 'Ferrari', 'Esposito', 'Bianchi', 'Romano', 'Colombo', 'Ricci', 'De Luca'],
  GB: ['Jones', 'Evans', 'Thomas', 'Roberts', 'Walker', 'Wright', "O'Brien", 'Hughes', 'Edwards'],
};

const CITIES: Record<Country, string[]> = {
  FR: ['Paris', 'Lyon', 'Marseille', 'Nantes', 'Lille'],
  US: ['New York', 'San Francisco', 'Chicago', 'Austin', 'Seattle'],
  DE: ['Berlin', 'München', 'Hamburg', 'Köln'],
  ES: ['Madrid', 'Barcelona', 'Sevilla', 'Valencia'],
  IT: ['Roma', 'Milano', 'Torino', 'Napoli'],
  GB: ['London', 'Manchester', 'Bristol', 'Leeds'],
};

const COUNTRIES: Country[] = ['FR', 'FR', 'FR', 'US', 'US', 'US', 'DE', 'ES', 'IT', 'GB'];

/** The same sequence for the same seed (mulberry32). */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }
}

/** Makes people with phones that never repeat (each gets its own serial number inside the numbering plan). */
export class PeopleFactory {
  private serial = 0;

  constructor(private readonly random: Random) {}

  person(): Person {
    const country = this.random.pick(COUNTRIES);
    const first = this.random.pick(FIRST[country]);
    const last = this.random.pick(LAST[country]);
    const name = `${first} ${last}`;
    const hasMobile = this.random.chance(0.85);
    return {
      name,
      email: `${ascii(first)}.${ascii(last)}${this.serial}@example.com`,
      country,
      city: this.random.pick(CITIES[country]),
      mobile: hasMobile ? this.mobile(country) : null,
      phone: hasMobile && this.random.chance(0.6) ? null : this.landline(country),
    };
  }

  /** A mobile number of `country`, in one of the spellings people use. */
  mobile(country: Country): string {
    const n = this.next();
    const d = (digits: number) => String(n).padStart(digits, '0').slice(-digits);
    const spell = (options: string[]) => this.random.pick(options);
    switch (country) {
      case 'FR': {
        // Nine digits after the 0: mobiles are 6x or 73-79 (75 here).
        const nine = this.random.chance(0.7) ? `6${d(8)}` : `75${d(7)}`;
        const pairs = `0${nine}`.match(/../g)!;
        return spell([
          pairs.join(' '),
          `+33 ${nine[0]} ${pairs.slice(1).join(' ')}`,
          pairs.join('.'),
          pairs.join(''),
        ]);
      }
      case 'US':
        return this.usNumber(n);
      case 'DE':
        return spell([`0151 ${d(8)}`, `+49 151 ${d(8)}`, `0151/${d(8)}`]);
      case 'ES':
        return spell([
          `6${d(8).slice(0, 2)} ${d(8).slice(2, 5)} ${d(8).slice(5)}`,
          `+34 6${d(8).slice(0, 2)} ${d(8).slice(2, 5)} ${d(8).slice(5)}`,
        ]);
      case 'IT':
        return spell([`347 ${d(7).slice(0, 3)} ${d(7).slice(3)}`, `+39 347 ${d(7)}`]);
      case 'GB':
        return spell([`07400 ${d(6)}`, `+44 7400 ${d(6)}`]);
    }
  }

  /** A landline of `country`. */
  landline(country: Country): string {
    const n = this.next();
    const d = (digits: number) => String(n).padStart(digits, '0').slice(-digits);
    switch (country) {
      case 'FR':
        return `01 ${d(8).slice(0, 2)} ${d(8).slice(2, 4)} ${d(8).slice(4, 6)} ${d(8).slice(6)}`;
      case 'US':
        return this.usNumber(n);
      case 'DE':
        return `030 ${d(8)}`;
      case 'ES':
        return `91 ${d(7).slice(0, 3)} ${d(7).slice(3)}`;
      case 'IT':
        return `06 ${d(8)}`;
      case 'GB':
        return `020 7946 ${d(4)}`;
    }
  }

  private usNumber(n: number): string {
    const area = this.random.pick(['212', '415', '646', '312', '617', '206', '512']);
    // Exchanges 201..899 without N11 and 555 (which is mostly unassigned).
    let exchange = 201 + (n % 699);
    if (exchange % 100 === 11 || exchange === 555) exchange += 1;
    const line = String(1000 + ((n * 7919) % 9000));
    return this.random.pick([
      `(${area}) ${exchange}-${line}`,
      `${area}-${exchange}-${line}`,
      `+1 ${area} ${exchange} ${line}`,
      `${area}.${exchange}.${line}`,
    ]);
  }

  private next(): number {
    this.serial += 1;
    return 12_345 + this.serial * 7_331;
  }
}

function ascii(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[^A-Za-z]/g, '')
    .toLowerCase();
}
