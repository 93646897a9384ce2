import { type RateDecision, TokenBucket } from './rateLimiter.js';

/**
 * Answers Verbose never sends but a client meets anyway (proxies, a wrong URL, a connection cut mid-answer).
 * Given instead of handling the request, so nothing is stored: a client that takes one for a success loses data.
 */
export const MALFORMED_KINDS = [
  /** 200 with no body at all. */
  'empty',
  /** 200 with a JSON body cut short (`{"ok":true,"imported":`), complete as HTTP. */
  'truncated',
  /** 200 whose body breaks off: the connection closes before the promised Content-Length. */
  'cutOff',
  /** 200 with an HTML page, as a web app answers when the URL is not the API. */
  'html',
  /** 200 with `{"ok": false, "error": …}`: the envelope refuses what the status accepts. */
  'okFalse200',
  /** 400 with an HTML page (a proxy's error page) instead of the JSON envelope. */
  'html400',
  /** 308 to the same path over https, as a host that only serves https answers. */
  'redirect',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/** The misbehaviour the simulator puts on, each switch independent; all off by default. */
export interface FaultSettings {
  /** Requests per second allowed, as a token bucket with a burst of `max(1, rate)`; null: no limit. */
  rateLimitPerSecond: number | null;
  /** Fraction (0..1) of requests answered 500 before anything is done, so nothing is stored. */
  errorRate: number;
  /** Fraction (0..1) of requests answered 502 with an HTML page, as a serverless host's proxy does. */
  htmlErrorRate: number;
  /** Fraction (0..1) of requests whose connection is destroyed before anything is done. */
  dropRate: number;
  /**
   * Fraction (0..1) of requests whose connection is destroyed after they were handled: the contacts are
   * stored but the client never hears so (a timeout after the commit, the case at-least-once must survive).
   */
  lostResponseRate: number;
  /** Fraction (0..1) of requests given a `malformedKind` answer instead of being handled: nothing is stored. */
  malformedRate: number;
  /** Which malformed answer `malformedRate` gives. */
  malformedKind: MalformedKind;
  /** Added before each request is answered. */
  latencyMs: number;
  /** A random extra of 0..latencyJitterMs on top of `latencyMs`. */
  latencyJitterMs: number;
  /** More contacts than this in one request: 413. null: no limit. */
  maxBatchSize: number | null;
  /** A body longer than this many bytes: 413 (Vercel's own cap is 4.5 MB). null: no limit. */
  maxBodyBytes: number | null;
  /** From this time (ms since the epoch) on, the API key is refused with 401. null: never. */
  revokeAt: number | null;
}

/** A partial change of the fault settings; `revokeAt` also takes a Date or an ISO 8601 text. */
export type FaultChanges = Partial<Omit<FaultSettings, 'revokeAt'>> & {
  revokeAt?: number | Date | string | null;
};

export const NO_FAULTS: Readonly<FaultSettings> = Object.freeze({
  rateLimitPerSecond: null,
  errorRate: 0,
  htmlErrorRate: 0,
  dropRate: 0,
  lostResponseRate: 0,
  malformedRate: 0,
  malformedKind: 'empty',
  latencyMs: 0,
  latencyJitterMs: 0,
  maxBatchSize: null,
  maxBodyBytes: null,
  revokeAt: null,
});

/** A fault value that is out of range or of the wrong type; the message names the setting and the value. */
export class FaultSettingsError extends Error {
  override name = 'FaultSettingsError';
}

type Rule<T> = (value: unknown, label: string) => T;

const shown = (value: unknown): string =>
  value instanceof Date ? value.toString() : (JSON.stringify(value) ?? String(value));

const fraction: Rule<number> = (value, label) => {
  if (typeof value === 'number' && value >= 0 && value <= 1) return value;
  throw new FaultSettingsError(`${label} must be a number from 0 to 1, got ${shown(value)}`);
};

const duration: Rule<number> = (value, label) => {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  throw new FaultSettingsError(`${label} must be a number of milliseconds, 0 or more, got ${shown(value)}`);
};

const positiveRate: Rule<number | null> = (value, label) => {
  if (value === null) return null;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  throw new FaultSettingsError(
    `${label} must be a number above 0 (or null for no limit), got ${shown(value)}`,
  );
};

const positiveCount: Rule<number | null> = (value, label) => {
  if (value === null) return null;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  throw new FaultSettingsError(
    `${label} must be a whole number, 1 or more (or null for no limit), got ${shown(value)}`,
  );
};

const malformedKind: Rule<MalformedKind> = (value, label) => {
  const kind = MALFORMED_KINDS.find((k) => k === value);
  if (kind !== undefined) return kind;
  throw new FaultSettingsError(`${label} must be one of ${MALFORMED_KINDS.join(', ')}, got ${shown(value)}`);
};

const instant: Rule<number | null> = (value, label) => {
  if (value === null) return null;
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === 'number'
        ? value
        : typeof value === 'string'
          ? Date.parse(value)
          : Number.NaN;
  if (Number.isFinite(ms)) return ms;
  throw new FaultSettingsError(
    `${label} must be a time (a Date, milliseconds since the epoch or an ISO 8601 text) or null, got ${shown(value)}`,
  );
};

/** How each setting is checked; `label` is how the caller names it (a property, or a command-line flag). */
export const FAULT_RULES: { readonly [K in keyof FaultSettings]: Rule<FaultSettings[K]> } = {
  rateLimitPerSecond: positiveRate,
  errorRate: fraction,
  htmlErrorRate: fraction,
  dropRate: fraction,
  lostResponseRate: fraction,
  malformedRate: fraction,
  malformedKind,
  latencyMs: duration,
  latencyJitterMs: duration,
  maxBatchSize: positiveCount,
  maxBodyBytes: positiveCount,
  revokeAt: instant,
};

const FAULT_NAMES = Object.keys(FAULT_RULES) as (keyof FaultSettings)[];

const isFaultName = (name: string): name is keyof FaultSettings => Object.hasOwn(FAULT_RULES, name);

/**
 * Checks every value of `changes` (which may come from JSON over HTTP, hence `unknown`) and returns `current`
 * with them applied. Throws a FaultSettingsError on an unknown setting or a bad value, changing nothing.
 */
export function applyFaultChanges(current: Readonly<FaultSettings>, changes: unknown): FaultSettings {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    throw new FaultSettingsError(
      `Fault settings must be an object such as {"errorRate": 0.1}, got ${shown(changes)}`,
    );
  }
  const next: FaultSettings = { ...current };
  const target = next as Record<keyof FaultSettings, unknown>;
  for (const [name, value] of Object.entries(changes)) {
    if (!isFaultName(name)) {
      throw new FaultSettingsError(
        `Unknown fault setting "${name}"; valid settings: ${FAULT_NAMES.join(', ')}`,
      );
    }
    target[name] = FAULT_RULES[name](value, name);
  }
  return next;
}

/**
 * The fault decisions for each request, drawn from an injectable random source so tests can be exact.
 * A fraction of 0 or 1 draws nothing, so an injected sequence only feeds the fractions in between.
 */
export class FaultPlan {
  private current: Readonly<FaultSettings>;
  private bucket: TokenBucket | undefined;

  constructor(
    settings: Readonly<FaultSettings>,
    private readonly random: () => number,
    private readonly now: () => number,
  ) {
    this.current = Object.freeze({ ...settings });
    this.bucket = this.bucketFor(settings.rateLimitPerSecond);
  }

  get settings(): Readonly<FaultSettings> {
    return this.current;
  }

  /** Applies a checked change; a new rate starts with a full bucket. */
  change(changes: unknown): Readonly<FaultSettings> {
    const next = applyFaultChanges(this.current, changes);
    if (next.rateLimitPerSecond !== this.current.rateLimitPerSecond) {
      this.bucket = this.bucketFor(next.rateLimitPerSecond);
    }
    this.current = Object.freeze(next);
    return this.current;
  }

  latencyMs(): number {
    const { latencyMs, latencyJitterMs } = this.current;
    return latencyMs + (latencyJitterMs > 0 ? this.random() * latencyJitterMs : 0);
  }

  drops(): boolean {
    return this.chance(this.current.dropRate);
  }

  answersHtmlError(): boolean {
    return this.chance(this.current.htmlErrorRate);
  }

  /** The malformed answer to give this request instead of handling it, if any. */
  answersMalformed(): MalformedKind | undefined {
    return this.chance(this.current.malformedRate) ? this.current.malformedKind : undefined;
  }

  failsInternally(): boolean {
    return this.chance(this.current.errorRate);
  }

  losesResponse(): boolean {
    return this.chance(this.current.lostResponseRate);
  }

  keyRevoked(): boolean {
    return this.current.revokeAt !== null && this.now() >= this.current.revokeAt;
  }

  /** Takes a token for one request; undefined when there is no rate limit. */
  admit(): RateDecision | undefined {
    return this.bucket?.take(this.now());
  }

  private chance(fraction: number): boolean {
    if (fraction <= 0) return false;
    if (fraction >= 1) return true;
    return this.random() < fraction;
  }

  private bucketFor(rate: number | null): TokenBucket | undefined {
    return rate === null ? undefined : new TokenBucket(rate, this.now());
  }
}
