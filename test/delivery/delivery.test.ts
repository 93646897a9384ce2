import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { VerboseContact } from '../../src/delivery/coalescer.js';
import type { UpsertOutcome } from '../../src/delivery/verboseClient.js';
import type { ContactFields, ListTarget } from '../../src/domain.js';
import { ACCEPT, deliveryHarness, type Send } from './deliveryHarness.js';
import { change, LIST_A, LIST_B, phone } from './fixtures.js';

const changes = (count: number, options: { target?: ListTarget; backfill?: boolean; from?: number } = {}) =>
  Array.from({ length: count }, (_, i) =>
    change(phone((options.from ?? 0) + i), { first_name: `n${i}` }, 0n, options),
  );

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function started(h: ReturnType<typeof deliveryHarness>) {
  h.delivery.start();
  stops.push(async () => {
    const stopping = h.delivery.stop({ deadlineMs: 0 });
    await h.clock.advance(0);
    await stopping;
  });
  return h;
}

describe('Delivery: batching', () => {
  it('sends full batches at once and the rest when the flush interval has passed, one target per request', async () => {
    const h = started(deliveryHarness(ACCEPT));
    const start = h.clock.now();
    h.commit(changes(1200, { target: LIST_A }));
    const last = h.commit(changes(10, { target: LIST_B, from: 5000 }));
    await h.clock.runUntil(() => h.requests.length === 2);
    expect(h.clock.now()).toBe(start);
    expect(h.requests.map((r) => [r.target, r.contacts.length])).toEqual([
      [LIST_A, 500],
      [LIST_A, 500],
    ]);
    await h.clock.advance(999);
    expect(h.requests).toHaveLength(2);
    await h.clock.advance(1);
    expect(h.requests.slice(2).map((r) => [r.target, r.contacts.length])).toEqual(
      expect.arrayContaining([
        [LIST_A, 200],
        [LIST_B, 10],
      ]),
    );
    await h.clock.runUntil(() => h.coalescer.size === 0);
    expect(h.checkpoint.refresh()).toBe(last);
    expect(await h.counter(h.metrics.contactsSent)).toBe(1210);
  });

  it('merges what arrives while waiting for the budget into the batch it is about to send', async () => {
    const h = started(deliveryHarness(ACCEPT, { requestsPerSecond: 1, batchSize: 2, concurrency: 1 }));
    h.commit(changes(2)); // a full batch, sent with the bucket's one token
    await h.clock.runUntil(() => h.requests.length === 1);
    h.commit(changes(2, { from: 10 })); // due, but waits a second for the next token
    h.commit([change(phone(10), { last_name: 'merged' }, 0n)]);
    await h.clock.runUntil(() => h.requests.length === 2);
    expect(h.requests[1]?.contacts).toEqual([
      { phone: phone(10), first_name: 'n0', last_name: 'merged' },
      { phone: phone(11), first_name: 'n1' },
    ]);
  });

  it('serves live contacts before backfill ones', async () => {
    const h = started(deliveryHarness(ACCEPT, { requestsPerSecond: 1, batchSize: 100, concurrency: 1 }));
    h.commit(changes(300, { target: LIST_A, backfill: true }));
    await h.clock.runUntil(() => h.requests.length === 1);
    h.commit(changes(300, { target: LIST_B, from: 1000 }));
    await h.clock.runUntil(() => h.coalescer.size === 0);
    // The backfill had the bucket's first token to itself; from then on the live batches overtake it.
    expect(h.requests.map((r) => (r.target === LIST_A ? 'backfill' : 'live'))).toEqual([
      'backfill',
      'live',
      'live',
      'live',
      'backfill',
      'backfill',
    ]);
  });

  it('holds a full batch while a burst keeps rewriting its contacts, at most for the flush interval', async () => {
    const h = started(deliveryHarness(ACCEPT, { batchSize: 10 }));
    const start = h.clock.now();
    h.commit(changes(5));
    for (let round = 0; round < 5; round++) {
      await h.clock.advance(20);
      // Full from the first round on, but the same people keep changing.
      h.commit(changes(10).map((c) => ({ ...c, fields: { first_name: `round${round}` } })));
    }
    expect(h.requests).toEqual([]);
    await h.clock.runUntil(() => h.requests.length === 1);
    expect(h.clock.now() - start).toBe(100 + 50);
    expect(h.requests[0]?.contacts.every((c) => c.first_name === 'round4')).toBe(true);
    // A burst that never pauses is still sent once its oldest contact has waited the flush interval.
    for (let round = 0; round < 60; round++) {
      h.commit(changes(10, { from: 100 }).map((c) => ({ ...c, fields: { first_name: `r${round}` } })));
      await h.clock.advance(20);
    }
    expect(h.requests.length).toBeGreaterThanOrEqual(2);
    expect(h.requests[1]!.at - h.requests[0]!.at).toBeLessThanOrEqual(1000 + 50);
  });

  it('bounds memory: the feed waits for room while Verbose is slow, and everything still arrives', async () => {
    const h = started(
      deliveryHarness(
        async () => {
          await h.clock.sleep(500);
          return { kind: 'accepted', status: 200 };
        },
        { maxPending: 10, batchSize: 5 },
      ),
    );
    let largest = 0;
    h.coalescer.onChange(() => {
      largest = Math.max(largest, h.coalescer.size);
    });
    let fed = 0;
    const feeding = (async () => {
      for (const c of changes(100)) {
        await h.coalescer.whenRoom();
        h.commit([c]);
        fed += 1;
      }
    })();
    await h.clock.runUntil(() => fed === 100 && h.coalescer.size === 0);
    await feeding;
    expect(largest).toBe(10);
    expect(h.requests.flatMap((r) => r.contacts)).toHaveLength(100);
  });

  it('sends everything at once on flush(), and idle() resolves when nothing is left', async () => {
    const h = started(deliveryHarness(ACCEPT));
    const last = h.commit(changes(3));
    const flushed = h.delivery.flush();
    await h.clock.settle();
    await flushed;
    expect(h.requests.map((r) => r.contacts.length)).toEqual([3]);
    expect(h.checkpoint.acknowledged).toBe(last);
    await h.delivery.idle();
  });
});

describe('Delivery: outcomes', () => {
  it('splits a 400 batch until the bad contacts stand alone, delivers the rest and rejects those', async () => {
    const bad = new Set([phone(3), phone(40), phone(41)]);
    const accepted: string[] = [];
    const send: Send = async (_target, contacts) => {
      const culprit = contacts.find((c) => bad.has(c.phone));
      if (culprit) return { kind: 'invalid', status: 400, error: `Invalid phone number: ${culprit.phone}` };
      accepted.push(...contacts.map((c) => c.phone));
      return { kind: 'accepted', status: 200 };
    };
    const h = started(deliveryHarness(send, { batchSize: 64 }));
    const last = h.commit(changes(64));
    await h.clock.runUntil(() => h.coalescer.size === 0);
    expect(h.rejected.map((r) => [r.rejection.contact?.phone, r.rejection.reason, r.stage])).toEqual(
      [...bad].map((p) => [p, `Invalid phone number: ${p}`, 'api']),
    );
    expect(h.rejected[0]?.rejection.origin).toMatchObject({ table: 'public.people' });
    expect(accepted.sort()).toEqual(
      changes(64)
        .map((c) => c.phone)
        .filter((p) => !bad.has(p))
        .sort(),
    );
    expect(h.checkpoint.refresh()).toBe(last);
    expect(await h.counter(h.metrics.rejects)).toBe(3);
  });

  it('splits a 413 batch and sends smaller batches to that target from then on', async () => {
    const send: Send = async (_target, contacts) =>
      contacts.length > 100
        ? { kind: 'tooLarge', status: 413, error: 'Payload too large' }
        : { kind: 'accepted', status: 200 };
    const h = started(deliveryHarness(send, { concurrency: 1 }));
    h.commit(changes(500));
    await h.clock.runUntil(() => h.coalescer.size === 0);
    expect(h.requests.slice(0, 4).map((r) => r.contacts.length)).toEqual([500, 250, 125, 63]);
    const before = h.requests.length;
    const last = h.commit(changes(500, { from: 1000 }));
    await h.clock.runUntil(() => h.coalescer.size === 0);
    expect(
      h.requests.slice(before).every((r) => r.contacts.length <= 63 && r.outcome?.kind === 'accepted'),
    ).toBe(true);
    expect(h.checkpoint.refresh()).toBe(last);
    expect(h.rejected).toEqual([]);
  });

  it('stops on 401: a fatal error naming verbose.api_key, and nothing acknowledged after', async () => {
    let releaseB: (outcome: UpsertOutcome) => void = () => {};
    const send: Send = (target) =>
      'list' in target && target.list === 'A'
        ? Promise.resolve({ kind: 'unauthorized', status: 401 })
        : new Promise((resolve) => {
            // Ignores the abort: the request completes after the fatal error, as one on the wire may.
            releaseB = resolve;
          });
    const h = started(deliveryHarness(send, { batchSize: 10 }));
    h.commit(changes(10, { target: LIST_B, from: 100 }));
    await h.clock.runUntil(() => h.requests.length === 1);
    const acknowledged = h.checkpoint.acknowledged;
    h.commit(changes(10, { target: LIST_A }));
    let fatal: Error | undefined;
    void h.delivery.fatal.then((error) => {
      fatal = error;
    });
    await h.clock.runUntil(() => fatal !== undefined);
    if (!fatal) throw new Error('no fatal error');
    expect(fatal.message).toMatch(/Verbose refused the API key \(HTTP 401\).*verbose\.api_key/);
    releaseB({ kind: 'accepted', status: 200 });
    h.commit(changes(1, { from: 900 }));
    await h.clock.advance(10_000);
    expect(h.checkpoint.refresh()).toBe(acknowledged);
    expect(h.requests).toHaveLength(2);
    await expect(h.delivery.idle()).rejects.toBe(fatal);
  });

  it('retries a transient failure without limit, raises the alarm, and clears it once through', async () => {
    const failures: UpsertOutcome[] = [
      { kind: 'transient', status: 500, detail: 'HTTP 500: Internal error' },
      {
        kind: 'transient',
        status: 'network',
        detail: 'connection failed: UND_ERR_SOCKET: other side closed',
      },
      { kind: 'transient', status: 'timeout', detail: 'no answer within 30000 ms' },
      { kind: 'transient', status: 502, detail: 'HTTP 502: 502: BAD_GATEWAY' },
      { kind: 'transient', status: 503, retryAfterMs: 4000, detail: 'HTTP 503: busy' },
      { kind: 'transient', status: 500, detail: 'HTTP 500: Internal error' },
      { kind: 'transient', status: 500, detail: 'HTTP 500: Internal error' },
      { kind: 'transient', status: 500, detail: 'HTTP 500: Internal error' },
    ];
    let alarmSeen = false;
    const h = started(
      deliveryHarness(
        async () => {
          if ((await h.metrics.retryAlarm.get()).values[0]?.value === 1) alarmSeen = true;
          return failures.shift() ?? { kind: 'accepted', status: 200 };
        },
        { retryAlarmMs: 10_000 },
      ),
    );
    const last = h.commit(changes(5));
    const start = h.clock.now();
    await h.clock.runUntil(() => h.coalescer.size === 0);
    expect(h.requests).toHaveLength(9);
    expect(new Set(h.requests.map((r) => JSON.stringify(r.contacts))).size).toBe(1);
    expect(await h.counter(h.metrics.retries)).toBe(8);
    expect(alarmSeen).toBe(true);
    expect((await h.metrics.retryAlarm.get()).values[0]?.value).toBe(0);
    expect(h.logs.some((l) => l.level === 'error' && /RETRY ALARM/.test(l.msg))).toBe(true);
    // Backoff doubles (full jitter at 0.5 here): 250, 500, 1000, 2000, then at least the 4 s Retry-After...
    expect(h.requests[4]!.at - h.requests[3]!.at).toBe(2000);
    expect(h.requests[5]!.at - h.requests[4]!.at).toBeGreaterThanOrEqual(4000);
    expect(h.clock.now() - start).toBeGreaterThan(10_000);
    expect(h.checkpoint.refresh()).toBe(last);
  });

  it('on 429 honours Retry-After for every request and lowers the rate', async () => {
    let refused = false;
    const h = started(
      deliveryHarness(
        async () => {
          if (refused) return { kind: 'accepted', status: 200 };
          refused = true;
          return {
            kind: 'transient',
            status: 429,
            retryAfterMs: 2000,
            detail: 'HTTP 429: Too many requests',
          };
        },
        { requestsPerSecond: 10, batchSize: 1 },
      ),
    );
    h.commit(changes(3));
    await h.clock.runUntil(() => h.coalescer.size === 0);
    expect(h.budget.rate).toBeCloseTo(7);
    const [first, ...rest] = h.requests;
    for (const request of rest) expect(request.at - first!.at).toBeGreaterThanOrEqual(2000);
  });

  it('in a dry run hands batches to dryRun, sends nothing and acknowledges nothing', async () => {
    const printed: [ListTarget, VerboseContact[]][] = [];
    const h = started(
      deliveryHarness(ACCEPT, { dryRun: (target, contacts) => printed.push([target, contacts]) }),
    );
    h.commit(changes(3));
    await h.delivery.flush();
    expect(printed).toEqual([[LIST_A, changes(3).map((c) => ({ phone: c.phone, ...c.fields }))]]);
    expect(h.requests).toEqual([]);
    expect(h.coalescer.size).toBe(0);
    expect(h.checkpoint.refresh()).toBe(0n);
  });

  it('on stop lets a request finish within the deadline, then abandons it unacknowledged', async () => {
    const aborted: unknown[] = [];
    const send: Send = (_target, _contacts, signal) =>
      new Promise((_resolve, reject) => {
        signal?.addEventListener('abort', () => {
          aborted.push(signal.reason);
          reject(signal.reason);
        });
      });
    const h = deliveryHarness(send, { batchSize: 2 });
    h.delivery.start();
    h.commit(changes(2));
    await h.clock.runUntil(() => h.requests.length === 1);
    const stopping = h.delivery.stop({ deadlineMs: 5000 });
    expect(h.delivery.stop({ deadlineMs: 1 })).toBe(stopping);
    let stopped = false;
    void stopping.then(() => {
      stopped = true;
    });
    await h.clock.advance(4999);
    expect(stopped).toBe(false);
    await h.clock.advance(1);
    await stopping;
    expect(aborted).toHaveLength(1);
    expect(h.coalescer.size).toBe(2);
    expect(h.checkpoint.refresh()).toBe(0n);
    await expect(h.delivery.idle()).rejects.toThrow(/stopped with 2 contacts undelivered/);
  });
});

describe('Delivery (property)', () => {
  it('never puts one phone in two requests at once, and Verbose ends with the last state per phone', async () => {
    const changeArb = fc.record({
      phone: fc.nat(7),
      target: fc.nat(1),
      fields: fc.record(
        { first_name: fc.constantFrom('a', 'b', 'c'), last_name: fc.constantFrom('x', 'y') },
        { requiredKeys: [] },
      ),
      backfill: fc.boolean(),
      pause: fc.nat(300),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(changeArb, { minLength: 1, maxLength: 5 }), { maxLength: 15 }),
        fc.array(fc.nat(400), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 4 }),
        async (transactions, latencies, concurrency) => {
          const flying = new Set<string>();
          const verbose = new Map<string, ContactFields>();
          const expected = new Map<string, ContactFields>();
          let calls = 0;
          let overlap = false;
          const send: Send = async (_target, contacts) => {
            for (const c of contacts) {
              if (flying.has(c.phone)) overlap = true;
              flying.add(c.phone);
            }
            const call = calls++;
            await h.clock.sleep(latencies[call % latencies.length]!);
            for (const c of contacts) {
              flying.delete(c.phone);
              const { phone: p, ...fields } = c;
              verbose.set(p, { ...verbose.get(p), ...fields });
            }
            return call % 3 === 2
              ? { kind: 'transient', status: 500, detail: 'x' }
              : { kind: 'accepted', status: 200 };
          };
          const h = deliveryHarness(send, { batchSize: 3, concurrency, flushIntervalMs: 100 });
          h.delivery.start();
          let last = 0n;
          for (const transaction of transactions) {
            last = h.commit(
              transaction.map((c) =>
                change(phone(c.phone), c.fields, 0n, {
                  target: c.target ? LIST_A : LIST_B,
                  backfill: c.backfill,
                }),
              ),
            );
            for (const c of transaction)
              expected.set(phone(c.phone), { ...expected.get(phone(c.phone)), ...c.fields });
            await h.clock.advance(transaction[0]!.pause);
          }
          await h.clock.runUntil(() => h.coalescer.size === 0);
          const stopping = h.delivery.stop({ deadlineMs: 0 });
          await h.clock.advance(0);
          await stopping;
          expect(overlap).toBe(false);
          expect(verbose).toEqual(expected);
          expect(h.checkpoint.refresh()).toBe(last);
        },
      ),
      { numRuns: 40 },
    );
  });
});
