import { describe, expect, it } from 'vitest';
import { type Priority, RateBudget } from '../../src/delivery/rateBudget.js';
import { VirtualClock } from './virtualClock.js';

function budget(requestsPerSecond: number, clock = new VirtualClock()) {
  const rates: number[] = [];
  const b = new RateBudget({
    requestsPerSecond,
    now: clock.now,
    sleep: clock.sleep,
    onRate: (r) => rates.push(r),
  });
  return { budget: b, clock, rates };
}

describe('RateBudget', () => {
  it('paces requests at the configured rate', async () => {
    const { budget: b, clock } = budget(5);
    const start = clock.now();
    const grantedAt: number[] = [];
    const all = Array.from({ length: 11 }, () =>
      b.take('live').then(() => grantedAt.push(clock.now() - start)),
    );
    await clock.runUntil(() => grantedAt.length === 11);
    await Promise.all(all);
    // One token at once, then one every 200 ms.
    expect(grantedAt[0]).toBe(0);
    expect(grantedAt[10]).toBeGreaterThanOrEqual(2000);
    expect(grantedAt[10]).toBeLessThanOrEqual(2010);
  });

  it('hands a token given back (its request was not needed) to the next waiter at once', async () => {
    const { budget: b, clock } = budget(1);
    const start = clock.now();
    await b.take('live');
    const next = b.take('live').then(() => clock.now() - start);
    await clock.advance(100);
    b.giveBack();
    await clock.advance(10);
    expect(await next).toBeLessThan(1000);
  });

  it('serves live waiters before backfill ones, whatever the arrival order', async () => {
    const { budget: b, clock } = budget(1);
    const order: string[] = [];
    const take = (priority: Priority, name: string) => b.take(priority).then(() => order.push(name));
    const all = [
      take('backfill', 'b1'),
      take('backfill', 'b2'),
      take('backfill', 'b3'),
      take('live', 'l1'),
      take('live', 'l2'),
    ];
    await clock.advance(1500);
    // b1 had the one token in the bucket; the next token went to a live waiter although b2 came first.
    expect(order).toEqual(['b1', 'l1']);
    const late = take('live', 'l3');
    await clock.runUntil(() => order.length === 6);
    await Promise.all([...all, late]);
    expect(order).toEqual(['b1', 'l1', 'l2', 'l3', 'b2', 'b3']);
  });

  it('lowers the rate on 429s while they continue, not below the floor, then climbs back', async () => {
    const { budget: b, clock } = budget(10);
    expect(b.rate).toBe(10);
    b.rateLimited();
    expect(b.rate).toBeCloseTo(7);
    b.rateLimited(); // the same burst of refusals: counted once
    expect(b.rate).toBeCloseTo(7);
    for (let i = 0; i < 30; i++) {
      await clock.advance(1000);
      b.rateLimited();
    }
    expect(b.rate).toBeCloseTo(0.2);
    await clock.advance(4000);
    expect(b.rate).toBeCloseTo(0.2);
    await clock.advance(2000); // 1 s into the climb: + a tenth of the configured rate
    expect(b.rate).toBeCloseTo(1.2);
    await clock.advance(20_000);
    expect(b.rate).toBe(10);
  });

  it('pauses every request until Retry-After has passed', async () => {
    const { budget: b, clock } = budget(100);
    const start = clock.now();
    await b.take('live');
    b.rateLimited(3000);
    let grantedAt: number | undefined;
    const next = b.take('live').then(() => {
      grantedAt = clock.now() - start;
    });
    await clock.advance(2999);
    expect(grantedAt).toBeUndefined();
    await clock.runUntil(() => grantedAt !== undefined);
    await next;
    expect(grantedAt).toBeGreaterThanOrEqual(3000);
  });

  it('drops a waiter whose signal aborts', async () => {
    const { budget: b, clock } = budget(1);
    await b.take('live');
    const controller = new AbortController();
    const aborted = b.take('backfill', controller.signal);
    controller.abort(new Error('stopping'));
    await expect(aborted).rejects.toThrow('stopping');
    expect(b.waiting).toEqual({ live: 0, backfill: 0 });
    await clock.advance(5000);
  });

  it('reports the allowed rate for the metric', async () => {
    const { budget: b, rates } = budget(4);
    b.rateLimited();
    expect(rates).toEqual([4, 4 * 0.7]);
  });
});
