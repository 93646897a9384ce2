import { describe, expect, it } from 'vitest';
import { call, simulator } from './http.js';

describe('GET /api/public/me', () => {
  it('answers the workspace for the accepted key', async () => {
    const sim = await simulator();
    const reply = await call(sim, 'GET', '/api/public/me');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ ok: true, workspace: { id: 'ws_simulator', name: 'Verbose simulator' } });
  });

  it('answers the configured key and workspace', async () => {
    const sim = await simulator({ apiKey: 'as_live_abc', workspace: { id: 'ws_1', name: 'Acme' } });
    expect((await call(sim, 'GET', '/api/public/me', { key: 'as_live_abc' })).body).toEqual({
      ok: true,
      workspace: { id: 'ws_1', name: 'Acme' },
    });
    expect((await call(sim, 'GET', '/api/public/me')).status).toBe(401);
  });

  it('answers 401 with the error envelope when the key is missing or wrong', async () => {
    const sim = await simulator();
    for (const key of [null, 'as_live_wrong', '']) {
      const reply = await call(sim, 'GET', '/api/public/me', { key });
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ ok: false, error: 'Invalid or missing API key' });
    }
  });

  it('takes the key only as a Bearer token', async () => {
    const sim = await simulator();
    const basic = await fetch(`${sim.url}/api/public/me`, {
      headers: { authorization: 'Basic as_test_key' },
    });
    expect(basic.status).toBe(401);
    const bare = await fetch(`${sim.url}/api/public/me`, { headers: { authorization: 'as_test_key' } });
    expect(bare.status).toBe(401);
  });
});

describe('POST /api/public/contacts without a good key', () => {
  it('answers 401 and stores nothing', async () => {
    const sim = await simulator();
    for (const key of [null, 'as_live_wrong']) {
      const reply = await call(sim, 'POST', '/api/public/contacts', { key, json: { phone: '+15551234567' } });
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ ok: false, error: 'Invalid or missing API key' });
    }
    expect(sim.store.size).toBe(0);
  });
});

describe('routing', () => {
  it('answers 404 with the envelope for an unknown path', async () => {
    const sim = await simulator();
    const reply = await call(sim, 'GET', '/api/public/campaigns');
    expect(reply.status).toBe(404);
    expect(reply.body).toEqual({ ok: false, error: 'Not found: GET /api/public/campaigns' });
  });

  it('answers 405 with the envelope and an Allow header for a wrong method', async () => {
    const sim = await simulator();
    const reply = await call(sim, 'GET', '/api/public/contacts');
    expect(reply.status).toBe(405);
    expect(reply.headers.get('allow')).toBe('POST');
    expect(reply.body).toEqual({ ok: false, error: 'Method not allowed: use POST' });
    expect((await call(sim, 'DELETE', '/api/public/me')).status).toBe(405);
  });

  it('ignores the query string', async () => {
    const sim = await simulator();
    expect((await call(sim, 'GET', '/api/public/me?verbose=1')).status).toBe(200);
  });
});
