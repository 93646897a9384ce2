import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface ThroughputOptions {
  /** The simulator's base URL. */
  url: string;
  apiKey?: string;
  /** Contacts per request. Default 500, verbose-sync's default batch. */
  batchSize?: number;
  /** Requests in flight, each on its own keep-alive connection. Default 8. */
  concurrency?: number;
  durationMs?: number;
  /** Distinct phones cycled through, so the store stays bounded and most writes are updates. */
  phones?: number;
}

export interface ThroughputResult {
  requests: number;
  contacts: number;
  seconds: number;
  requestsPerSecond: number;
  contactsPerSecond: number;
  byStatus: Record<string, number>;
}

/**
 * Sends `POST /api/public/contacts` batches as fast as the simulator answers, for `npm run bench` and for
 * the figure in README.md. Bodies are built up front so the figure is the server's, not JSON.stringify's.
 */
export async function measureThroughput(options: ThroughputOptions): Promise<ThroughputResult> {
  const batchSize = options.batchSize ?? 500;
  const concurrency = options.concurrency ?? 8;
  const durationMs = options.durationMs ?? 3000;
  const bodyCount = Math.max(1, Math.ceil((options.phones ?? 100_000) / batchSize));
  const bodies = Array.from({ length: bodyCount }, (_, body) =>
    JSON.stringify({
      contacts: Array.from({ length: batchSize }, (_, i) => ({
        phone: `+1555${String(body * batchSize + i).padStart(7, '0')}`,
        first_name: 'Bench',
        last_name: `Contact ${i}`,
        source: 'throughput',
      })),
      list: 'Throughput',
    }),
  );
  const headers = {
    authorization: `Bearer ${options.apiKey ?? 'as_test_key'}`,
    'content-type': 'application/json',
  };
  const pool = new Pool(options.url, { connections: concurrency });
  const byStatus: Record<string, number> = {};
  let requests = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async (offset: number): Promise<void> => {
    for (let n = offset; performance.now() < deadline; n += concurrency) {
      const response = await pool.request({
        path: '/api/public/contacts',
        method: 'POST',
        headers,
        body: bodies[n % bodyCount],
      });
      await response.body.dump();
      byStatus[response.statusCode] = (byStatus[response.statusCode] ?? 0) + 1;
      requests += 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, offset) => worker(offset)));
  } finally {
    await pool.close();
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    requests,
    contacts: requests * batchSize,
    seconds,
    requestsPerSecond: requests / seconds,
    contactsPerSecond: (requests * batchSize) / seconds,
    byStatus,
  };
}
