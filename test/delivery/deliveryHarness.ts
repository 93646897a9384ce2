import { pino } from 'pino';
import { Checkpoint } from '../../src/delivery/checkpoint.js';
import { Coalescer, type VerboseContact } from '../../src/delivery/coalescer.js';
import { Delivery, type DeliveryOptions } from '../../src/delivery/delivery.js';
import { RateBudget } from '../../src/delivery/rateBudget.js';
import type { RejectStage } from '../../src/delivery/rejectLog.js';
import type { ContactSender, UpsertOutcome } from '../../src/delivery/verboseClient.js';
import type { ContactChange, ListTarget, Lsn, Rejection } from '../../src/domain.js';
import { Metrics } from '../../src/ops/metrics.js';
import { VirtualClock } from './virtualClock.js';

export interface SentRequest {
  target: ListTarget;
  contacts: VerboseContact[];
  at: number;
  outcome?: UpsertOutcome;
}

export type Send = (
  target: ListTarget,
  contacts: VerboseContact[],
  signal?: AbortSignal,
) => Promise<UpsertOutcome>;

export const ACCEPT: Send = async () => ({ kind: 'accepted', status: 200 });

/**
 * A Delivery on virtual time with an injected `send`, the real coalescer, checkpoint and rate budget, and
 * in-memory rejects and logs.
 */
export function deliveryHarness(
  send: Send,
  overrides: Partial<DeliveryOptions> & { requestsPerSecond?: number; maxPending?: number } = {},
) {
  const clock = new VirtualClock();
  const coalescer = new Coalescer({ maxPending: overrides.maxPending ?? 100_000, now: clock.now });
  const checkpoint = new Checkpoint({ coalescer, start: 0n, now: clock.now });
  const budget = new RateBudget({
    requestsPerSecond: overrides.requestsPerSecond ?? 1000,
    now: clock.now,
    sleep: clock.sleep,
  });
  const requests: SentRequest[] = [];
  const client: ContactSender = {
    async upsert(target, contacts, signal) {
      const request: SentRequest = { target, contacts: [...contacts], at: clock.now() };
      requests.push(request);
      request.outcome = await send(target, [...contacts], signal);
      return request.outcome;
    },
  };
  const rejected: { rejection: Rejection; stage: RejectStage }[] = [];
  const logs: { level: string; msg: string; [key: string]: unknown }[] = [];
  const log = pino(
    { level: 'debug', formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => logs.push(JSON.parse(line)) },
  );
  const metrics = new Metrics({ defaults: false });
  const delivery = new Delivery({
    coalescer,
    checkpoint,
    client,
    budget,
    rejects: {
      async append(rejection, stage) {
        rejected.push({ rejection, stage });
        return true;
      },
    },
    batchSize: 500,
    flushIntervalMs: 1000,
    concurrency: 2,
    retryAlarmMs: 60_000,
    log,
    metrics,
    now: clock.now,
    sleep: clock.sleep,
    random: () => 0.5,
    ...overrides,
  });

  let lsn: Lsn = 0n;
  /** One transaction: its changes are added, then it commits. Returns its commit LSN. */
  const commit = (changes: Omit<ContactChange, 'commitLsn'>[]): Lsn => {
    lsn += 10n;
    for (const c of changes) coalescer.add({ ...c, commitLsn: lsn });
    checkpoint.committed(lsn);
    return lsn;
  };
  const counter = async (metric: { get(): Promise<{ values: { value: number; labels: object }[] }> }) =>
    (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);

  return {
    clock,
    coalescer,
    checkpoint,
    budget,
    delivery,
    requests,
    rejected,
    logs,
    metrics,
    commit,
    counter,
  };
}
