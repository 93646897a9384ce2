import { describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/simulator/simulator.js';
import { call, manualClock, postContacts, sequence, simulator } from './http.js';

const contact = { phone: '+15550000001', first_name: 'Jo' };

describe('rateLimitPerSecond', () => {
  it('answers 429 with Retry-After beyond a burst of the rate, and lets requests through as tokens refill', async () => {
    const clock = manualClock();
    const sim = await simulator({ faults: { rateLimitPerSecond: 2 }, now: clock.now });
    const first = await postContacts(sim, contact);
    const second = await postContacts(sim, contact);
    const third = await postContacts(sim, contact);
    expect([first.status, second.status, third.status]).toEqual([200, 200, 429]);
    expect(first.headers.get('x-ratelimit-limit')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(second.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(third.body).toEqual({ ok: false, error: 'Too many requests' });
    expect(third.headers.get('retry-after')).toBe('1');
    expect(third.headers.get('x-ratelimit-limit')).toBe('2');
    expect(third.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(sim.store.contact(contact.phone)?.writes).toBe(2);

    clock.advance(500);
    expect((await postContacts(sim, contact)).status).toBe(200);
    expect((await postContacts(sim, contact)).status).toBe(429);
    expect(sim.requests.rateLimited()).toBe(2);
  });

  it('rounds Retry-After up to whole seconds for a slow rate', async () => {
    const clock = manualClock();
    const sim = await simulator({ faults: { rateLimitPerSecond: 0.2 }, now: clock.now });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(200);
    const limited = await call(sim, 'GET', '/api/public/me');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('5');
    clock.advance(4_000);
    expect((await call(sim, 'GET', '/api/public/me')).headers.get('retry-after')).toBe('1');
    clock.advance(1_000);
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(200);
  });

  it('sends no rate headers when there is no limit', async () => {
    const sim = await simulator();
    const reply = await call(sim, 'GET', '/api/public/me');
    expect(reply.headers.get('x-ratelimit-limit')).toBeNull();
  });
});

describe('errorRate', () => {
  it('at 1 answers every request 500 and stores nothing', async () => {
    const sim = await simulator({ faults: { errorRate: 1 } });
    const reply = await postContacts(sim, { contacts: [contact], list: 'Leads' });
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ ok: false, error: 'Internal error' });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(500);
    expect(sim.store.size).toBe(0);
    expect(sim.store.lists()).toEqual([]);
  });

  it('at 0 answers none 500', async () => {
    const sim = await simulator({ faults: { errorRate: 0 } });
    for (let i = 0; i < 20; i += 1) expect((await postContacts(sim, contact)).status).toBe(200);
  });

  it('fails the requests whose random draw falls below the fraction', async () => {
    const sim = await simulator({ faults: { errorRate: 0.5 }, random: sequence(0.1, 0.9, 0.49, 0.5) });
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await postContacts(sim, contact)).status);
    expect(statuses).toEqual([500, 200, 500, 200]);
    expect(sim.store.contact(contact.phone)?.writes).toBe(2);
  });
});

describe('htmlErrorRate', () => {
  it('answers 502 with an HTML page, as a serverless proxy does', async () => {
    const sim = await simulator({ faults: { htmlErrorRate: 1 } });
    const reply = await postContacts(sim, contact);
    expect(reply.status).toBe(502);
    expect(reply.headers.get('content-type')).toMatch(/^text\/html/);
    expect(reply.body).toMatch(/<html>.*502/);
    expect(sim.store.size).toBe(0);
  });
});

describe('latency', () => {
  it('still answers, and stores, with latency and jitter', async () => {
    const sim = await simulator({ faults: { latencyMs: 20, latencyJitterMs: 10 }, random: sequence(0.5) });
    const reply = await postContacts(sim, contact);
    expect(reply.body).toEqual({ ok: true, imported: 1, skipped: 0 });
    expect(sim.store.size).toBe(1);
  });

  it('ends requests still waiting when the simulator closes', async () => {
    const sim = await startSimulator({ faults: { latencyMs: 60_000 } });
    const pending = postContacts(sim, contact);
    // Give the request time to reach the server; the test passes either way, the point is that close() ends.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await sim.close();
    await expect(pending).rejects.toThrow();
    expect(sim.store.size).toBe(0);
  });
});

describe('dropRate', () => {
  it('at 1 destroys the connection without an answer and stores nothing', async () => {
    const sim = await simulator({ faults: { dropRate: 1 } });
    await expect(postContacts(sim, contact)).rejects.toThrow();
    expect(sim.store.size).toBe(0);
    expect(sim.requests.countsByStatus()).toEqual({ dropped: 1 });
  });

  it('lets the next request through once switched off', async () => {
    const sim = await simulator({ faults: { dropRate: 1 } });
    await expect(call(sim, 'GET', '/api/public/me')).rejects.toThrow();
    sim.setFaults({ dropRate: 0 });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(200);
  });
});

describe('lostResponseRate', () => {
  it('at 1 stores the contacts but destroys the connection instead of answering', async () => {
    const sim = await simulator({ faults: { lostResponseRate: 1 } });
    await expect(postContacts(sim, contact)).rejects.toThrow();
    await expect(postContacts(sim, contact)).rejects.toThrow();
    expect(sim.store.contact(contact.phone)?.writes).toBe(2);
    expect(sim.requests.countOf('dropped')).toBe(2);
  });
});

describe('maxBatchSize', () => {
  it('answers 413 naming both numbers for more contacts than allowed, and stores nothing', async () => {
    const sim = await simulator({ faults: { maxBatchSize: 2 } });
    const three = [{ phone: '+15550000001' }, { phone: '+15550000002' }, { phone: '+15550000003' }];
    const reply = await postContacts(sim, { contacts: three });
    expect(reply.status).toBe(413);
    expect(reply.body).toEqual({ ok: false, error: 'Payload too large: 3 contacts, at most 2' });
    expect(sim.store.size).toBe(0);
    expect((await postContacts(sim, three.slice(0, 2))).status).toBe(200);
  });
});

describe('maxBodyBytes', () => {
  it('answers 413 for a longer body and keeps the connection usable', async () => {
    const sim = await simulator({ faults: { maxBodyBytes: 100 } });
    const big = { contacts: [{ phone: '+15550000001', first_name: 'x'.repeat(200) }] };
    const reply = await postContacts(sim, big);
    expect(reply.status).toBe(413);
    expect(reply.body).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^Payload too large: \d+ bytes, at most 100$/),
    });
    expect((await postContacts(sim, contact)).status).toBe(200);
    expect(sim.store.contacts().map((stored) => stored.first_name)).toEqual(['Jo']);
  });
});

describe('key revocation', () => {
  it('answers 401 to every request after revokeKey()', async () => {
    const sim = await simulator();
    expect((await postContacts(sim, contact)).status).toBe(200);
    sim.revokeKey();
    const reply = await postContacts(sim, contact);
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({ ok: false, error: 'Invalid or missing API key' });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(401);
    expect(sim.store.contact(contact.phone)?.writes).toBe(1);
  });

  it('answers 401 from revokeAt on', async () => {
    const clock = manualClock();
    const sim = await simulator({ faults: { revokeAt: new Date(clock.now() + 1_000) }, now: clock.now });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(200);
    clock.advance(1_000);
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(401);
  });
});

describe('fault settings', () => {
  it('are checked at start, with a message naming the setting and the value', async () => {
    await expect(startSimulator({ faults: { errorRate: 1.5 } })).rejects.toThrow(
      'errorRate must be a number from 0 to 1, got 1.5',
    );
  });

  it.each([
    [{ dropRate: -0.1 }, 'dropRate must be a number from 0 to 1, got -0.1'],
    [{ latencyMs: -1 }, 'latencyMs must be a number of milliseconds, 0 or more, got -1'],
    [{ rateLimitPerSecond: 0 }, 'rateLimitPerSecond must be a number above 0 (or null for no limit), got 0'],
    [{ maxBatchSize: 2.5 }, 'maxBatchSize must be a whole number, 1 or more (or null for no limit), got 2.5'],
    [{ revokeAt: 'soon' }, 'revokeAt must be a time'],
    [{ errorRatio: 1 }, 'Unknown fault setting "errorRatio"; valid settings: rateLimitPerSecond, errorRate'],
  ])('refuse %j at runtime, changing nothing', async (changes, message) => {
    const sim = await simulator({ faults: { latencyMs: 5 } });
    expect(() => sim.setFaults({ errorRate: 0.5, ...changes })).toThrow(message);
    expect(sim.faults.errorRate).toBe(0);
    expect(sim.faults.latencyMs).toBe(5);
  });

  it('change while running and are readable', async () => {
    const sim = await simulator();
    expect((await postContacts(sim, contact)).status).toBe(200);
    expect(sim.setFaults({ errorRate: 1 })).toMatchObject({ errorRate: 1, dropRate: 0 });
    expect(sim.faults.errorRate).toBe(1);
    expect((await postContacts(sim, contact)).status).toBe(500);
    sim.setFaults({ errorRate: 0, maxBatchSize: 1 });
    expect((await postContacts(sim, [contact, contact])).status).toBe(413);
  });
});
