import type { Now, Sleep } from './clock.js';

/** Live changes are served first; a full resync gets what they leave. */
export type Priority = 'live' | 'backfill';

export interface RateBudgetOptions {
  /** `verbose.requests_per_second`: the rate to keep to, and to climb back to after 429s. */
  requestsPerSecond: number;
  now: Now;
  sleep: Sleep;
  /** Told the allowed rate whenever it changes (metrics.rateLimit). */
  onRate?: (requestsPerSecond: number) => void;
  /** The lowest rate a run of 429s can bring it to (default 0.2 rps). */
  minRate?: number;
  /** Multiplier applied on a 429 (default 0.7), at most once per `decreaseSpacingMs`. */
  decreaseFactor?: number;
  /** 429s closer together than this (default 1000 ms) count as one: concurrent requests are refused together. */
  decreaseSpacingMs?: number;
  /** The rate starts climbing back this long after the last 429 (default 5000 ms). */
  recoverAfterMs?: number;
  /** Then it climbs by this many rps per second (default a tenth of the configured rate). */
  recoverPerSecond?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * The one request budget shared by every call to Verbose: a token bucket at the configured rate, with a burst
 * of at most 50 ms worth of requests (at least one), so requests go out evenly instead of in bursts that a
 * server-side limiter would refuse.
 *
 * On 429 the whole bucket pauses until `Retry-After` and the rate drops (×0.7, not below 0.2 rps) while 429s
 * continue; after a stretch without one it climbs back additively to the configured rate (AIMD, as TCP does).
 */
export class RateBudget {
  private readonly configured: number;
  private readonly minRate: number;
  private readonly decreaseFactor: number;
  private readonly decreaseSpacingMs: number;
  private readonly recoverAfterMs: number;
  private readonly recoverPerSecond: number;
  /** The rate right after the last decrease, from which it climbs back. */
  private lowered: number;
  private last429At: number | undefined;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private tokens: number;
  private refilledAt: number;
  private pausedUntil = Number.NEGATIVE_INFINITY;
  private reportedRate: number | undefined;
  private readonly live: Waiter[] = [];
  private readonly backfill: Waiter[] = [];
  private pump: Promise<void> | undefined;

  constructor(private readonly options: RateBudgetOptions) {
    if (!(options.requestsPerSecond > 0)) {
      throw new RangeError(`requestsPerSecond must be above 0, got ${options.requestsPerSecond}`);
    }
    this.configured = options.requestsPerSecond;
    this.minRate = Math.min(options.minRate ?? 0.2, this.configured);
    this.decreaseFactor = options.decreaseFactor ?? 0.7;
    this.decreaseSpacingMs = options.decreaseSpacingMs ?? 1000;
    this.recoverAfterMs = options.recoverAfterMs ?? 5000;
    this.recoverPerSecond = options.recoverPerSecond ?? this.configured / 10;
    this.lowered = this.configured;
    this.tokens = burstOf(this.configured);
    this.refilledAt = options.now();
    this.report(this.configured);
  }

  /** The rate currently allowed, in requests per second. */
  get rate(): number {
    const rate = this.rateAt(this.options.now());
    this.report(rate);
    return rate;
  }

  /** Requests waiting for a token, by priority. */
  get waiting(): { live: number; backfill: number } {
    return { live: this.live.length, backfill: this.backfill.length };
  }

  /**
   * Resolves when one request may be sent. Live waiters are always served before backfill ones, each in
   * arrival order. Rejects with the signal's reason when `signal` aborts first.
   */
  take(priority: Priority, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const queue = priority === 'live' ? this.live : this.backfill;
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = queue.indexOf(waiter);
          if (at >= 0) queue.splice(at, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      queue.push(waiter);
      this.startPump();
    });
  }

  /** A token taken for a request that was not sent after all (nothing left to send): the next waiter gets it. */
  giveBack(): void {
    // Verbose asked for a pause meanwhile: the token was from before it, and the pause empties the bucket.
    if (this.options.now() < this.pausedUntil) return;
    const waiter = this.live.shift() ?? this.backfill.shift();
    if (waiter) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
      return;
    }
    this.tokens = Math.min(burstOf(this.refill(this.options.now())), this.tokens + 1);
  }

  /** Verbose answered 429: pause every request until `retryAfterMs` has passed, and lower the rate. */
  rateLimited(retryAfterMs?: number): void {
    const now = this.options.now();
    if (now - this.lastDecreaseAt >= this.decreaseSpacingMs) {
      this.lowered = Math.max(this.minRate, this.rateAt(now) * this.decreaseFactor);
      this.lastDecreaseAt = now;
    } else {
      this.lowered = this.rateAt(now);
    }
    this.last429At = now;
    this.report(this.lowered);
    if (retryAfterMs !== undefined) this.pause(retryAfterMs);
  }

  /** Pause every request for `ms` (a `Retry-After` on a 503), without changing the rate. */
  pause(ms: number): void {
    const until = this.options.now() + Math.max(0, ms);
    if (until <= this.pausedUntil) return;
    this.pausedUntil = until;
    // The bucket starts empty after the pause: a burst right at its end is what got us refused.
    this.tokens = 0;
    this.refilledAt = until;
  }

  private rateAt(now: number): number {
    if (this.last429At === undefined) return this.configured;
    const climbingMs = now - this.last429At - this.recoverAfterMs;
    if (climbingMs <= 0) return this.lowered;
    const rate = Math.min(this.configured, this.lowered + (this.recoverPerSecond * climbingMs) / 1000);
    if (rate >= this.configured) this.last429At = undefined;
    return rate;
  }

  private refill(now: number): number {
    const rate = this.rateAt(now);
    this.report(rate);
    if (now > this.refilledAt) {
      this.tokens = Math.min(burstOf(rate), this.tokens + ((now - this.refilledAt) / 1000) * rate);
      this.refilledAt = now;
    }
    return rate;
  }

  private startPump(): void {
    if (this.pump) return;
    this.pump = this.serve()
      .catch((error: unknown) => {
        for (const waiter of [...this.live.splice(0), ...this.backfill.splice(0)]) waiter.reject(error);
      })
      .finally(() => {
        this.pump = undefined;
        if (this.live.length + this.backfill.length > 0) this.startPump();
      });
  }

  /** Grants tokens to waiters, live first, sleeping until the next token or the end of a pause. */
  private async serve(): Promise<void> {
    while (this.live.length + this.backfill.length > 0) {
      const now = this.options.now();
      if (now < this.pausedUntil) {
        await this.options.sleep(this.pausedUntil - now);
        continue;
      }
      const rate = this.refill(now);
      if (this.tokens < 1) {
        await this.options.sleep(Math.max(1, ((1 - this.tokens) / rate) * 1000));
        continue;
      }
      const waiter = this.live.shift() ?? this.backfill.shift();
      if (!waiter) return;
      this.tokens -= 1;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
  }

  private report(rate: number): void {
    if (rate === this.reportedRate) return;
    this.reportedRate = rate;
    this.options.onRate?.(rate);
  }
}

/** 50 ms worth of requests, at least one: enough to absorb timer lateness, too little to trip a server limiter. */
function burstOf(rate: number): number {
  return Math.max(1, rate * 0.05);
}
