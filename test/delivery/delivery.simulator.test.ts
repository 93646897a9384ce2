import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/delivery/checkpoint.js';
import { CheckpointStore } from '../../src/delivery/checkpointStore.js';
import { systemNow, systemSleep } from '../../src/delivery/clock.js';
import { Coalescer } from '../../src/delivery/coalescer.js';
import { Delivery, type DeliveryOptions } from '../../src/delivery/delivery.js';
import { RateBudget } from '../../src/delivery/rateBudget.js';
import { RejectLog } from '../../src/delivery/rejectLog.js';
import { VerboseClient } from '../../src/delivery/verboseClient.js';
import type { ContactChange, Lsn } from '../../src/domain.js';
import { Metrics } from '../../src/ops/metrics.js';
import {
  DEFAULT_API_KEY,
  type FaultChanges,
  type Simulator,
  startSimulator,
} from '../../src/simulator/simulator.js';
import { change, LIST_A, phone } from './fixtures.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  // Reverse order: delivery before client before simulator before files.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Settings {
  batchSize?: number;
  flushIntervalMs?: number;
  requestsPerSecond?: number;
  concurrency?: number;
  faults?: FaultChanges;
  backoff?: DeliveryOptions['backoff'];
}

/** The delivery stage wired as the daemon wires it, against a real simulator over HTTP, on real time. */
async function stage(settings: Settings = {}) {
  const simulator: Simulator = await startSimulator({ faults: settings.faults ?? {} });
  cleanups.push(() => simulator.close());
  const stateDir = await mkdtemp(join(tmpdir(), 'verbose-sync-delivery-'));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const metrics = new Metrics({ defaults: false });
  const coalescer = new Coalescer({ maxPending: 50_000, now: systemNow, sizeGauge: metrics.coalescerSize });
  const store = new CheckpointStore({ stateDir, slot: 'verbose_sync', now: systemNow, sleep: systemSleep });
  const checkpoint = new Checkpoint({
    coalescer,
    start: (await store.load()) ?? 0n,
    now: systemNow,
    metrics,
  });
  checkpoint.onAdvance((lsn) => store.save(lsn));
  cleanups.push(() => store.flush());
  const rates: number[] = [];
  const requestsPerSecond = settings.requestsPerSecond ?? 5;
  const budget = new RateBudget({
    requestsPerSecond,
    now: systemNow,
    sleep: systemSleep,
    onRate: (rate) => {
      rates.push(rate);
      metrics.rateLimit.set(rate);
    },
  });
  const concurrency = settings.concurrency ?? 2;
  const client = new VerboseClient({
    url: simulator.url,
    apiKey: DEFAULT_API_KEY,
    requestTimeoutMs: 5000,
    connections: concurrency,
  });
  cleanups.push(() => client.close());
  const rejects = new RejectLog({ stateDir, now: systemNow });
  const delivery = new Delivery({
    coalescer,
    checkpoint,
    client,
    budget,
    rejects,
    batchSize: settings.batchSize ?? 500,
    flushIntervalMs: settings.flushIntervalMs ?? 1000,
    concurrency,
    retryAlarmMs: 60_000,
    log: pino({ level: 'silent' }),
    metrics,
    now: systemNow,
    sleep: systemSleep,
    random: Math.random,
    ...(settings.backoff ? { backoff: settings.backoff } : {}),
  });
  delivery.start();
  cleanups.push(() => delivery.stop({ deadlineMs: 1000 }));

  let lsn: Lsn = 0n;
  /** Feeds changes as the stream would: room first, one transaction per `perCommit` changes. */
  const feed = async (changes: Iterable<Omit<ContactChange, 'commitLsn'>>, perCommit = 100): Promise<Lsn> => {
    let inTransaction = 0;
    lsn += 10n;
    for (const c of changes) {
      await coalescer.whenRoom();
      coalescer.add({ ...c, commitLsn: lsn });
      if (++inTransaction === perCommit) {
        checkpoint.committed(lsn);
        // A socket delivers the stream in chunks: let I/O (the requests) run in between.
        await yieldToIo();
        lsn += 10n;
        inTransaction = 0;
      }
    }
    checkpoint.committed(lsn);
    return lsn;
  };
  const people = (count: number, version = 'v') =>
    Array.from({ length: count }, (_, i) =>
      change(phone(i), { first_name: `${version}${i}` }, 0n, { target: LIST_A }),
    );

  return {
    simulator,
    coalescer,
    checkpoint,
    store,
    budget,
    delivery,
    rejects,
    metrics,
    feed,
    people,
    rates,
    stateDir,
  };
}

describe('Delivery against the simulator', () => {
  it('sends a burst of 100,000 changes to 5,000 phones in about ceil(5000 / batch_size) requests', async () => {
    const s = await stage({ batchSize: 500, flushIntervalMs: 1000, requestsPerSecond: 5, concurrency: 2 });
    const started = performance.now();
    const last = await s.feed(
      (function* () {
        for (let i = 0; i < 100_000; i++) yield change(phone(i % 5000), { first_name: `v${i}` }, 0n);
      })(),
    );
    await s.delivery.idle();
    const elapsedMs = performance.now() - started;
    const requests = s.simulator.requests.count();
    const allowance = Math.ceil(5000 / 500) + Math.ceil(elapsedMs / 1000);
    console.info(`burst: ${requests} requests in ${Math.round(elapsedMs)} ms (allowance ${allowance})`);

    expect(requests).toBeLessThanOrEqual(allowance);
    expect(s.simulator.store.size).toBe(5000);
    for (let p = 0; p < 5000; p++)
      expect(s.simulator.store.contact(phone(p))?.first_name).toBe(`v${95_000 + p}`);
    expect(s.checkpoint.refresh()).toBe(last);
  });

  it('keeps to a rate-limited API: almost no 429s, most of the budget used', async () => {
    const rate = 40;
    const s = await stage({
      batchSize: 10,
      requestsPerSecond: rate,
      concurrency: 2,
      faults: { rateLimitPerSecond: rate },
    });
    const started = performance.now();
    await s.feed(s.people(1000));
    await s.delivery.idle();
    const elapsedSeconds = (performance.now() - started) / 1000;
    const { total, rateLimited } = s.simulator.requests.stats();
    const used = (total - rateLimited) / (rate * elapsedSeconds + 2);
    console.info(
      `rate limit ${rate}/s: ${total} requests, ${rateLimited} refused, ${Math.round(used * 100)}% of the budget used`,
    );
    expect(rateLimited).toBeLessThanOrEqual(Math.floor(total * 0.01));
    expect(total - rateLimited).toBe(100);
    expect(used).toBeGreaterThan(0.5);
    expect(s.simulator.store.size).toBe(1000);
  });

  it('slows down when the configured rate is above what the API allows, and still delivers everything', async () => {
    const s = await stage({
      batchSize: 10,
      requestsPerSecond: 40,
      concurrency: 2,
      faults: { rateLimitPerSecond: 15 },
    });
    await s.feed(s.people(500));
    await s.delivery.idle();
    const { total, rateLimited } = s.simulator.requests.stats();
    console.info(
      `configured 40/s against 15/s: ${total} requests, ${rateLimited} refused; lowest rate ${Math.min(...s.rates).toFixed(2)}`,
    );
    expect(rateLimited).toBeGreaterThan(0);
    expect(Math.min(...s.rates)).toBeLessThan(40);
    expect(s.simulator.store.size).toBe(500);
  });

  it('delivers everything through 30% of 500s, HTML 502s, dropped connections and lost responses', async () => {
    const s = await stage({
      batchSize: 50,
      requestsPerSecond: 200,
      concurrency: 4,
      faults: { errorRate: 0.3, htmlErrorRate: 0.05, dropRate: 0.1, lostResponseRate: 0.1 },
      backoff: { baseMs: 20, capMs: 200 },
    });
    const last = await s.feed(s.people(2000));
    await s.delivery.idle();
    const byStatus = s.simulator.requests.countsByStatus();
    expect(byStatus['500']).toBeGreaterThan(0);
    expect(byStatus.dropped).toBeGreaterThan(0);
    for (let p = 0; p < 2000; p++) expect(s.simulator.store.contact(phone(p))?.first_name).toBe(`v${p}`);
    expect(s.checkpoint.refresh()).toBe(last);
    expect((await s.metrics.retries.get()).values[0]?.value).toBeGreaterThan(0);
  });

  it('rejects the one contact Verbose refuses, with its text, and delivers the rest', async () => {
    const s = await stage({ batchSize: 100, requestsPerSecond: 100 });
    const contacts = s.people(100);
    contacts[37] = change('+12', { first_name: 'Bad' }, 0n, { target: LIST_A });
    const last = await s.feed(contacts);
    await s.delivery.flush();
    expect(s.simulator.store.size).toBe(99);
    const rejects = await s.rejects.list();
    expect(rejects).toMatchObject([
      {
        stage: 'api',
        phone: '2',
        reason: 'Invalid phone number: +12',
        contact: { phone: '+12', target: LIST_A },
      },
    ]);
    expect(s.checkpoint.refresh()).toBe(last);
    await s.store.flush();
    const saved = JSON.parse(await readFile(join(s.stateDir, 'checkpoint.json'), 'utf8'));
    expect(saved).toMatchObject({ slot: 'verbose_sync', lsn: `0/${last.toString(16).toUpperCase()}` });
  });

  it('learns a smaller batch size from 413s', async () => {
    const s = await stage({ batchSize: 200, requestsPerSecond: 100, faults: { maxBatchSize: 30 } });
    const last = await s.feed(s.people(1000), 1000);
    await s.delivery.idle();
    expect(s.simulator.store.size).toBe(1000);
    const requests = s.simulator.requests.entries();
    const refused = requests.filter((r) => r.status === 413).length;
    console.info(
      `413s: ${refused} of ${requests.length} requests; sizes ${requests.map((r) => r.contacts).join(' ')}`,
    );
    // Learnt within a few refusals (each of the 2 workers may have one batch of the old size in hand).
    expect(refused).toBeLessThanOrEqual(6);
    expect(requests.at(-1)!.contacts).toBeLessThanOrEqual(30);
    expect(s.checkpoint.refresh()).toBe(last);
  });

  it('stops on a revoked key with a fatal error and acknowledges nothing more', async () => {
    const s = await stage({ batchSize: 10, requestsPerSecond: 100 });
    await s.feed(s.people(10));
    await s.delivery.idle();
    const acknowledged = s.checkpoint.refresh();
    s.simulator.revokeKey();
    await s.feed(s.people(10, 'w'));
    const fatal = await s.delivery.fatal;
    expect(fatal.message).toMatch(/API key \(HTTP 401\)/);
    expect(fatal.message).not.toContain(DEFAULT_API_KEY);
    expect(s.checkpoint.refresh()).toBe(acknowledged);
  });
});
