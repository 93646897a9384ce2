import { describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/simulator/simulator.js';
import { call, manualClock, postContacts, simulator } from './http.js';

describe('GET /_simulator/state', () => {
  it('shows what Verbose holds, the request stats and the faults, without a key', async () => {
    const sim = await simulator({ lists: [{ id: 'lst_seed', name: 'Seeded' }] });
    const created = await postContacts(sim, {
      contacts: [{ phone: '+15550000001', first_name: 'Jo' }],
      list: 'Leads',
    });
    await postContacts(sim, { phone: 'bad' });
    const listId = (created.body as { list_id: string }).list_id;

    const state = await call(sim, 'GET', '/_simulator/state', { key: null });
    expect(state.status).toBe(200);
    expect(state.body).toEqual({
      ok: true,
      workspace: { id: 'ws_simulator', name: 'Verbose simulator' },
      contacts: [{ phone: '+15550000001', first_name: 'Jo', list_ids: [listId], writes: 1 }],
      lists: [
        { id: 'lst_seed', name: 'Seeded', size: 0 },
        { id: listId, name: 'Leads', size: 1 },
      ],
      requests: { total: 2, byStatus: { '200': 1, '400': 1 }, contactsAccepted: 1, rateLimited: 0 },
      faults: sim.faults,
    });
  });

  it('is not subject to faults', async () => {
    const sim = await simulator({ faults: { errorRate: 1, dropRate: 1 } });
    sim.revokeKey();
    expect((await call(sim, 'GET', '/_simulator/state')).status).toBe(200);
  });

  it('answers 404 and 405 with the envelope for unknown control paths and methods', async () => {
    const sim = await simulator();
    expect((await call(sim, 'GET', '/_simulator/nothing')).status).toBe(404);
    const wrong = await call(sim, 'DELETE', '/_simulator/faults');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST');
    expect(wrong.body).toEqual({ ok: false, error: 'Method not allowed' });
  });
});

describe('POST /_simulator/faults', () => {
  it('changes faults while running', async () => {
    const sim = await simulator();
    const changed = await call(sim, 'POST', '/_simulator/faults', { json: { errorRate: 1, latencyMs: 1 } });
    expect(changed.body).toMatchObject({ ok: true, faults: { errorRate: 1, latencyMs: 1, dropRate: 0 } });
    expect((await postContacts(sim, { phone: '+15550000001' })).status).toBe(500);

    await call(sim, 'POST', '/_simulator/faults', { json: { errorRate: 0, rateLimitPerSecond: 1 } });
    expect((await call(sim, 'GET', '/_simulator/faults')).body).toMatchObject({
      faults: { errorRate: 0, rateLimitPerSecond: 1 },
    });
    expect((await postContacts(sim, { phone: '+15550000001' })).status).toBe(200);

    await call(sim, 'POST', '/_simulator/faults', { json: { rateLimitPerSecond: null } });
    expect((await postContacts(sim, { phone: '+15550000001' })).status).toBe(200);
  });

  it('takes revokeAt as an ISO time', async () => {
    const clock = manualClock();
    const sim = await simulator({ now: clock.now });
    const at = new Date(clock.now() + 10_000).toISOString();
    const reply = await call(sim, 'POST', '/_simulator/faults', { json: { revokeAt: at } });
    expect(reply.body).toMatchObject({ faults: { revokeAt: clock.now() + 10_000 } });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(200);
    clock.advance(10_000);
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(401);
  });

  it('answers 400 for a bad value or bad JSON, changing nothing', async () => {
    const sim = await simulator();
    const bad = await call(sim, 'POST', '/_simulator/faults', { json: { errorRate: 0.5, dropRate: 'half' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ ok: false, error: 'dropRate must be a number from 0 to 1, got "half"' });
    expect(sim.faults.errorRate).toBe(0);
    const garbled = await call(sim, 'POST', '/_simulator/faults', { text: '{' });
    expect(garbled.body).toEqual({ ok: false, error: 'Invalid JSON body' });
  });
});

describe('POST /_simulator/revoke and /_simulator/reset', () => {
  it('revoke makes every later API request 401', async () => {
    const sim = await simulator();
    expect((await call(sim, 'POST', '/_simulator/revoke')).body).toEqual({ ok: true });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(401);
  });

  it('reset forgets contacts, lists and requests, and restores the starting faults and key', async () => {
    const sim = await simulator({
      faults: { maxBatchSize: 10 },
      lists: [{ id: 'lst_seed', name: 'Seeded' }],
    });
    await postContacts(sim, { contacts: [{ phone: '+15550000001' }], list: 'Leads' });
    await postContacts(sim, { contacts: [{ phone: '+15550000002' }], list_id: 'lst_seed' });
    sim.setFaults({ errorRate: 1 });
    sim.revokeKey();

    expect((await call(sim, 'POST', '/_simulator/reset')).body).toEqual({ ok: true });
    expect(sim.store.contacts()).toEqual([]);
    expect(sim.store.lists()).toEqual([{ id: 'lst_seed', name: 'Seeded', size: 0 }]);
    expect(sim.requests.count()).toBe(0);
    expect(sim.faults).toMatchObject({ maxBatchSize: 10, errorRate: 0, revokeAt: null });
    expect((await postContacts(sim, { phone: '+15550000001' })).status).toBe(200);
  });

  it('reset() does the same from the module API', async () => {
    const sim = await simulator();
    await postContacts(sim, { phone: '+15550000001' });
    sim.reset();
    expect(sim.store.size).toBe(0);
    expect(sim.requests.stats()).toEqual({ total: 0, byStatus: {}, contactsAccepted: 0, rateLimited: 0 });
  });
});

describe('the request log', () => {
  it('records each API request with its status, contacts and list target', async () => {
    const clock = manualClock();
    const sim = await simulator({ now: clock.now, faults: { rateLimitPerSecond: 3 } });
    const created = await postContacts(sim, {
      contacts: [{ phone: '+15550000001' }, { phone: '+15550000002' }],
      list: 'Leads',
    });
    const listId = (created.body as { list_id: string }).list_id;
    await postContacts(sim, { contacts: [{ phone: '+15550000003' }], list_id: listId });
    await call(sim, 'GET', '/api/public/me', { key: 'wrong' });
    await postContacts(sim, [{ phone: '+15550000004' }]);
    await call(sim, 'GET', '/_simulator/state');

    const entries = sim.requests.entries();
    expect(entries.map(({ durationMs, ...rest }) => rest)).toEqual([
      {
        time: clock.now(),
        method: 'POST',
        path: '/api/public/contacts',
        status: 200,
        contacts: 2,
        list: 'Leads',
        listId,
      },
      {
        time: clock.now(),
        method: 'POST',
        path: '/api/public/contacts',
        status: 200,
        contacts: 1,
        list: null,
        listId,
      },
      {
        time: clock.now(),
        method: 'GET',
        path: '/api/public/me',
        status: 401,
        contacts: 0,
        list: null,
        listId: null,
      },
      {
        time: clock.now(),
        method: 'POST',
        path: '/api/public/contacts',
        status: 429,
        contacts: 1,
        list: null,
        listId: null,
      },
    ]);
    for (const entry of entries) expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    expect(sim.requests.countsByStatus()).toEqual({ '200': 2, '401': 1, '429': 1 });
    expect(sim.requests.contactsAccepted()).toBe(3);
    expect(sim.requests.rateLimited()).toBe(1);

    const overHttp = await call(sim, 'GET', '/_simulator/requests');
    expect(overHttp.body).toEqual({ ok: true, requests: entries });
  });

  it('keeps only the newest entries but counts every request', async () => {
    const sim = await simulator({ requestLogLimit: 2 });
    for (let i = 0; i < 5; i += 1) await postContacts(sim, { phone: `+1555000000${i}` });
    expect(sim.requests.entries()).toHaveLength(2);
    expect(sim.requests.count()).toBe(5);
    expect(sim.requests.contactsAccepted()).toBe(5);
  });
});

describe('starting and closing', () => {
  it('close() is safe to call twice', async () => {
    const sim = await simulator();
    await Promise.all([sim.close(), sim.close()]);
    await sim.close();
    await expect(fetch(`${sim.url}/api/public/me`)).rejects.toThrow();
  });

  it('says so when the port is taken', async () => {
    const first = await simulator();
    const port = Number(new URL(first.url).port);
    await expect(startSimulator({ port })).rejects.toThrow(
      `Cannot start the Verbose simulator on 127.0.0.1:${port}: the port is in use; pick another with --port`,
    );
  });
});
