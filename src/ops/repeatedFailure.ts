/** The part of a pino logger used: a line with fields and a message. */
export interface FailureLog {
  warn(details: object, message: string): void;
  debug(details: object, message: string): void;
}

export interface RepeatedFailureOptions {
  log: FailureLog;
  now: () => number;
  /** Logged (warn) for the first failure of an outage. */
  firstMessage: string;
  /** Logged (warn) at most every `summaryEveryMs` while the failures go on, with their count and duration. */
  ongoingMessage: string;
  /** Default 60 s. */
  summaryEveryMs?: number;
  /**
   * A failure this long after the previous one starts a new outage, for callers that cannot tell when the
   * last one ended (default twice `summaryEveryMs`).
   */
  forgetAfterMs?: number;
}

/** What an outage amounted to, for the line that says it is over. */
export interface Outage {
  failures: number;
  failingForMs: number;
}

/**
 * Rolls up a failure that repeats while something is down (a database restart, an API outage): the first one
 * is a warning, the ones after it are debug lines, and a summary warning comes at most every `summaryEveryMs`,
 * so a 30-minute outage prints a few dozen lines instead of one per attempt.
 */
export class RepeatedFailure {
  private since: number | undefined;
  private failures = 0;
  private lastFailureAt = 0;
  private lastWarnAt = 0;

  constructor(private readonly options: RepeatedFailureOptions) {}

  get failing(): boolean {
    return this.since !== undefined;
  }

  failed(details: Record<string, unknown>): void {
    const now = this.options.now();
    const every = this.options.summaryEveryMs ?? 60_000;
    const forgetAfter = this.options.forgetAfterMs ?? 2 * every;
    if (this.since !== undefined && now - this.lastFailureAt > forgetAfter) this.since = undefined;
    this.lastFailureAt = now;
    if (this.since === undefined) {
      this.since = now;
      this.failures = 1;
      this.lastWarnAt = now;
      this.options.log.warn(details, this.options.firstMessage);
      return;
    }
    this.failures += 1;
    const summary = { ...details, failures: this.failures, failingForMs: now - this.since };
    if (now - this.lastWarnAt >= every) {
      this.lastWarnAt = now;
      this.options.log.warn(summary, this.options.ongoingMessage);
    } else {
      this.options.log.debug(summary, this.options.firstMessage);
    }
  }

  /** The failures are over: returns what they amounted to (undefined when there were none) and starts afresh. */
  recovered(): Outage | undefined {
    if (this.since === undefined) return undefined;
    const outage = { failures: this.failures, failingForMs: this.options.now() - this.since };
    this.since = undefined;
    this.failures = 0;
    return outage;
  }
}
