import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseRetryAfter, type UpsertOutcome, VerboseClient } from '../../src/delivery/verboseClient.js';
import { DEFAULT_API_KEY, type Simulator, startSimulator } from '../../src/simulator/simulator.js';

const SECRET = 'as_live_secret_key_123456';

/** A server answering every request with `answer`, for shapes the simulator never produces. */
async function rawServer(answer: (res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server };
}

describe('VerboseClient against the simulator', () => {
  let simulator: Simulator;
  let client: VerboseClient;
  beforeAll(async () => {
    simulator = await startSimulator({ lists: [{ id: 'lst_1', name: 'Seeded' }] });
    client = new VerboseClient({ url: `${simulator.url}/`, apiKey: DEFAULT_API_KEY, requestTimeoutMs: 5000 });
  });
  afterEach(() => simulator.reset());
  afterAll(async () => {
    await client.close();
    await simulator.close();
  });

  it('upserts to a list by name, by id, or none, and reads the counts', async () => {
    const byName = await client.upsert({ list: 'Leads' }, [{ phone: '+15550000001', first_name: 'Ann' }]);
    expect(byName).toMatchObject({ kind: 'accepted', status: 200, imported: 1, skipped: 0 });
    expect(byName.kind === 'accepted' && typeof byName.listId).toBe('string');
    expect(await client.upsert({ list_id: 'lst_1' }, [{ phone: '+15550000002' }])).toMatchObject({
      kind: 'accepted',
      listId: 'lst_1',
    });
    expect(await client.upsert({}, [{ phone: '+15550000003' }])).toEqual({
      kind: 'accepted',
      status: 200,
      imported: 1,
      skipped: 0,
    });
    const seen = simulator.requests.entries().map((r) => [r.list, r.listId, r.contacts]);
    expect(seen).toEqual([
      ['Leads', expect.any(String), 1],
      [null, 'lst_1', 1],
      [null, null, 1],
    ]);
    expect(simulator.store.contact('+15550000001')).toMatchObject({ first_name: 'Ann' });
  });

  it('classifies a 400 with the API text', async () => {
    expect(await client.upsert({}, [{ phone: '+1' }])).toEqual({
      kind: 'invalid',
      status: 400,
      error: 'Invalid phone number: +1',
    });
  });

  it('classifies 401 (a wrong key) and a revoked key', async () => {
    const wrong = new VerboseClient({ url: simulator.url, apiKey: SECRET, requestTimeoutMs: 5000 });
    expect(await wrong.upsert({}, [{ phone: '+15550000001' }])).toEqual({
      kind: 'unauthorized',
      status: 401,
    });
    expect(await wrong.me()).toEqual({ kind: 'unauthorized', status: 401 });
    await wrong.close();
    expect(await client.me()).toEqual({
      kind: 'ok',
      workspace: { id: 'ws_simulator', name: 'Verbose simulator' },
    });
  });

  it('classifies 413, 429 with Retry-After, 500, an HTML 502 and dropped connections', async () => {
    simulator.setFaults({ maxBatchSize: 1 });
    expect(await client.upsert({}, [{ phone: '+15550000001' }, { phone: '+15550000002' }])).toMatchObject({
      kind: 'tooLarge',
      status: 413,
    });
    simulator.setFaults({ maxBatchSize: null, rateLimitPerSecond: 0.5 });
    await client.upsert({}, [{ phone: '+15550000001' }]);
    expect(await client.upsert({}, [{ phone: '+15550000001' }])).toMatchObject({
      kind: 'transient',
      status: 429,
      retryAfterMs: 2000,
    });
    simulator.setFaults({ rateLimitPerSecond: null, errorRate: 1 });
    expect(await client.upsert({}, [{ phone: '+15550000001' }])).toMatchObject({
      kind: 'transient',
      status: 500,
    });
    simulator.setFaults({ errorRate: 0, htmlErrorRate: 1 });
    expect(await client.upsert({}, [{ phone: '+15550000001' }])).toEqual({
      kind: 'transient',
      status: 502,
      detail: 'HTTP 502: 502: BAD_GATEWAY',
    });
    simulator.setFaults({ htmlErrorRate: 0, dropRate: 1 });
    expect(await client.upsert({}, [{ phone: '+15550000001' }])).toMatchObject({
      kind: 'transient',
      status: 'network',
    });
    simulator.setFaults({ dropRate: 0, lostResponseRate: 1 });
    expect(await client.upsert({}, [{ phone: '+15550000001' }])).toMatchObject({
      kind: 'transient',
      status: 'network',
    });
  });

  it('times out at request_timeout_ms', async () => {
    simulator.setFaults({ latencyMs: 2000 });
    const quick = new VerboseClient({ url: simulator.url, apiKey: DEFAULT_API_KEY, requestTimeoutMs: 100 });
    expect(await quick.upsert({}, [{ phone: '+15550000001' }])).toEqual({
      kind: 'transient',
      status: 'timeout',
      detail: 'no answer within 100 ms',
    });
    await quick.close();
  });

  it('rethrows the caller abort instead of classifying it', async () => {
    simulator.setFaults({ latencyMs: 2000 });
    const controller = new AbortController();
    const pending = client.upsert({}, [{ phone: '+15550000001' }], controller.signal);
    controller.abort(new Error('shutting down'));
    await expect(pending).rejects.toThrow('shutting down');
  });
});

describe('VerboseClient with odd answers', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function outcomeFor(answer: (res: ServerResponse) => void, apiKey = SECRET): Promise<UpsertOutcome> {
    const { url, server } = await rawServer(answer);
    servers.push(server);
    const client = new VerboseClient({ url, apiKey, requestTimeoutMs: 2000 });
    try {
      return await client.upsert({ list: 'L' }, [{ phone: '+15550000001' }]);
    } finally {
      await client.close();
    }
  }

  it('treats a 200 HTML page as transient (not a Verbose answer), never as accepted', async () => {
    const outcome = await outcomeFor((res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><head><title>Verbose</title></head><body>app</body></html>');
    });
    expect(outcome).toMatchObject({ kind: 'transient', status: 200 });
    expect(outcome.kind === 'transient' && outcome.detail).toMatch(/verbose\.url/);
  });

  it('treats a 200 with ok:false as invalid with its text', async () => {
    const outcome = await outcomeFor((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":false,"error":"list_id is required"}');
    });
    expect(outcome).toEqual({ kind: 'invalid', status: 200, error: 'list_id is required' });
  });

  it('survives an empty 500, a truncated 200 and a 400 without error text', async () => {
    expect(
      await outcomeFor((res) => {
        res.writeHead(500);
        res.end();
      }),
    ).toMatchObject({ kind: 'transient', status: 500, detail: 'HTTP 500: no error text' });
    const truncated = await outcomeFor((res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"ok":tr');
      res.destroy();
    });
    expect(truncated).toMatchObject({ kind: 'transient' });
    expect(
      await outcomeFor((res) => {
        res.writeHead(400, { 'content-type': 'text/html' });
        res.end('<h1>Bad   request</h1>');
      }),
    ).toEqual({ kind: 'invalid', status: 400, error: 'HTTP 400: Bad request' });
    expect(
      await outcomeFor((res) => {
        res.writeHead(503, { 'retry-after': '7' });
        res.end('busy');
      }),
    ).toMatchObject({ kind: 'transient', status: 503, retryAfterMs: 7000 });
  });

  it('never puts the API key in an outcome, even when the server echoes it', async () => {
    const outcome = await outcomeFor((res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error: `bad key ${SECRET} in Bearer ${SECRET}` }));
    });
    expect(JSON.stringify(outcome)).not.toContain(SECRET);
  });

  it('reports a refused connection as a network failure without the key', async () => {
    const { url, server } = await rawServer(() => {});
    await new Promise((resolve) => server.close(resolve));
    const client = new VerboseClient({ url, apiKey: SECRET, requestTimeoutMs: 2000 });
    const outcome = await client.upsert({}, [{ phone: '+15550000001' }]);
    await client.close();
    expect(outcome).toMatchObject({ kind: 'transient', status: 'network' });
    expect(outcome.kind === 'transient' && outcome.detail).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify(outcome)).not.toContain(SECRET);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, and ignores nonsense', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
