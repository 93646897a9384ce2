import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/simulator/rateLimiter.js';

describe('TokenBucket', () => {
  it('allows a burst of the rate, then one request per 1/rate seconds', () => {
    const bucket = new TokenBucket(10, 0);
    const burst = Array.from({ length: 11 }, () => bucket.take(0).allowed);
    expect(burst.filter(Boolean)).toHaveLength(10);
    expect(bucket.take(99).allowed).toBe(false);
    expect(bucket.take(100)).toEqual({ allowed: true, limit: 10, remaining: 0, retryAfterSeconds: 0 });
  });

  it('never holds more than the burst, however long it was idle', () => {
    const bucket = new TokenBucket(2, 0);
    expect(bucket.take(3_600_000).remaining).toBe(1);
  });

  it('allows one request at a time for a rate below 1', () => {
    const bucket = new TokenBucket(0.5, 0);
    expect(bucket.take(0).allowed).toBe(true);
    expect(bucket.take(0)).toEqual({ allowed: false, limit: 1, remaining: 0, retryAfterSeconds: 2 });
    expect(bucket.take(2_000).allowed).toBe(true);
  });

  it('does not drain when the clock steps backwards', () => {
    const bucket = new TokenBucket(1, 10_000);
    expect(bucket.take(5_000).allowed).toBe(true);
    expect(bucket.take(6_000).allowed).toBe(true);
  });
});
