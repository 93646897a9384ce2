/** What the rate limiter said about one request, with the numbers for the `X-RateLimit-*` headers. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Whole seconds until one more request would be allowed (at least 1); 0 when allowed. */
  retryAfterSeconds: number;
}

/**
 * A token bucket: `ratePerSecond` tokens flow in per second, up to a burst of `max(1, ratePerSecond)`, and each
 * request takes one. Chosen over fixed one-second windows because that is how most real APIs and gateways
 * behave: a client that keeps to the rate is never refused, one that bursts is refused at once.
 */
export class TokenBucket {
  readonly capacity: number;
  private tokens: number;
  private refilledAt: number;

  constructor(
    readonly ratePerSecond: number,
    now: number,
  ) {
    this.capacity = Math.max(1, ratePerSecond);
    this.tokens = this.capacity;
    this.refilledAt = now;
  }

  take(now: number): RateDecision {
    // A clock that steps backwards must not drain the bucket.
    const elapsedMs = Math.max(0, now - this.refilledAt);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsedMs / 1000) * this.ratePerSecond);
    this.refilledAt = now;
    const limit = Math.ceil(this.ratePerSecond);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true, limit, remaining: Math.floor(this.tokens), retryAfterSeconds: 0 };
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerSecond));
    return { allowed: false, limit, remaining: 0, retryAfterSeconds };
  }
}
