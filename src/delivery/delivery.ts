import { setImmediate } from 'node:timers/promises';
import { type ListTarget, targetKey } from '../domain.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../ops/metrics.js';
import { RepeatedFailure } from '../ops/repeatedFailure.js';
import { AcceptedContacts } from './acceptedContacts.js';
import type { Now, Random, Sleep } from './clock.js';
import {
  type CoalescedContact,
  type Coalescer,
  type TargetBacklog,
  toVerboseContact,
  type VerboseContact,
} from './coalescer.js';
import type { Priority, RateBudget } from './rateBudget.js';
import type { RejectSink } from './rejectLog.js';
import type { ContactSender, UpsertOutcome } from './verboseClient.js';
import { Alarm, Wakeup } from './wakeup.js';

/** How long a target must go without merges before a full batch of it is sent ahead of the flush interval. */
const MERGE_QUIET_MS = 50;

export type DeliveryLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
export type DeliveryMetrics = Pick<
  Metrics,
  | 'contactsSent'
  | 'contactsUnchanged'
  | 'requests'
  | 'retries'
  | 'retryAlarm'
  | 'rejects'
  | 'batchSize'
  | 'requestSeconds'
>;

/** Delivery cannot go on (the API key was refused, a reject could not be written): stop the daemon, exit 1. */
export class DeliveryFatalError extends Error {
  override name = 'DeliveryFatalError';
}

export interface DeliveryOptions {
  coalescer: Pick<Coalescer, 'backlogs' | 'take' | 'complete' | 'onChange' | 'size' | 'capacity'>;
  /** Told to recompute after deliveries; held (frozen) on a fatal error and in a dry run. */
  checkpoint: { refresh(): unknown; hold(): void };
  client: ContactSender;
  budget: Pick<RateBudget, 'take' | 'giveBack' | 'rateLimited' | 'pause'>;
  rejects: RejectSink;
  /** `verbose.batch_size`: contacts per request. */
  batchSize: number;
  /** `verbose.flush_interval_ms`: the longest a sendable contact waits for its batch to fill. */
  flushIntervalMs: number;
  /** `verbose.concurrency`: requests in flight at once. */
  concurrency: number;
  /** `verbose.retry_alarm_ms`: retries of one batch for this long raise the alarm. */
  retryAlarmMs: number;
  log: DeliveryLog;
  metrics: DeliveryMetrics;
  now: Now;
  sleep: Sleep;
  random: Random;
  /**
   * `--dry-run`: called with each batch instead of sending it (and without waiting for the rate budget). The
   * batch counts as done for the coalescer, so the pipeline keeps flowing instead of filling up and pausing the
   * stream, but the checkpoint is held from the start, so nothing is acknowledged or persisted.
   */
  dryRun?: (target: ListTarget, contacts: VerboseContact[]) => void;
  /** Called once with the fatal error; `fatal` resolves with it too. */
  onFatal?: (error: DeliveryFatalError) => void;
  /** Exponential backoff with full jitter between retries of one batch (default 500 ms doubling, up to 30 s). */
  backoff?: { baseMs: number; capMs: number };
}

/**
 * The delivery stage: takes coalesced contacts, batches them per list target and sends them within the rate
 * budget, `concurrency` requests at a time.
 *
 * Each worker waits until some target has a batch due (full, or its oldest contact has waited
 * `flushIntervalMs`), then for a budget token, and only then takes the batch from the coalescer: everything that
 * arrived meanwhile is merged into it, so a slow API makes fuller batches, not more requests or memory. Live
 * contacts go first, both in choosing the target and in each batch. A phone is never in two requests at once
 * (the coalescer only hands out the oldest entry of each phone).
 *
 * Outcomes: accepted → done; 400 → halves, recursively, until the bad contacts stand alone, which are rejected
 * with the API's text; 413 → halves, and that smaller batch size for the target from then on; 401/403 → fatal,
 * nothing further acknowledged; transient → the same batch again after backoff with full jitter, without
 * limit, with an alarm after `retryAlarmMs`. `list` targets are sent by name every time (see `accepted`).
 */
export class Delivery {
  /** Resolves (never rejects) with the error that stopped delivery, if one ever does. */
  readonly fatal: Promise<DeliveryFatalError>;
  private resolveFatal!: (error: DeliveryFatalError) => void;
  private failure: DeliveryFatalError | undefined;
  /** Aborted to stop taking work: token waits, backoff and idle sleeps end. */
  private readonly halt = new AbortController();
  /** Aborted to give up on requests in flight (stop deadline passed, or fatal). */
  private readonly abandon = new AbortController();
  private readonly changed = new Wakeup();
  private readonly unsubscribe: () => void;
  private workers: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  /** Workers waiting for a token for a batch not taken yet. */
  private claims = 0;
  /** Batches taken and not finished (sending, retrying or splitting). */
  private inFlight = 0;
  private flushing = 0;
  private alarms = 0;
  /** Smaller batch sizes learnt from 413s, by target key. */
  private readonly batchLimits = new Map<string, number>();
  private readonly knownListIds = new Set<string>();
  private readonly acceptedContacts: AcceptedContacts;
  /** Rolls up failed requests across workers: an outage logs its first failure, then a summary a minute. */
  private readonly requestFailures: RepeatedFailure;

  constructor(private readonly options: DeliveryOptions) {
    for (const name of ['batchSize', 'concurrency'] as const) {
      if (!Number.isSafeInteger(options[name]) || options[name] < 1) {
        throw new RangeError(`${name} must be a whole number, 1 or more, got ${options[name]}`);
      }
    }
    this.fatal = new Promise((resolve) => {
      this.resolveFatal = resolve;
    });
    this.acceptedContacts = new AcceptedContacts(options.coalescer.capacity);
    this.unsubscribe = options.coalescer.onChange(() => this.changed.notify());
    this.requestFailures = new RepeatedFailure({
      log: options.log,
      now: options.now,
      firstMessage: 'Verbose request failed; retrying',
      ongoingMessage: 'Verbose requests still failing; retrying (nothing behind them is acknowledged)',
    });
    if (options.dryRun) options.checkpoint.hold();
  }

  /** Starts the workers. Calling it again, or after `stop()`, does nothing. */
  start(): void {
    if (this.workers || this.stopped) return;
    const workers = Array.from({ length: this.options.concurrency }, () =>
      this.work().catch((error: unknown) => this.fail(error)),
    );
    this.workers = Promise.all(workers).then(() => undefined);
  }

  /**
   * Stops taking batches and lets requests in flight finish within `deadlineMs`; after that they are abandoned
   * and their contacts stay undelivered (so unacknowledged). Safe to call twice: both calls share one stop.
   */
  stop(options: { deadlineMs: number }): Promise<void> {
    this.stopped ??= this.shutdown(options.deadlineMs);
    return this.stopped;
  }

  /** Sends everything sendable now, ignoring the flush interval, and resolves when nothing is left. */
  async flush(): Promise<void> {
    this.flushing += 1;
    this.changed.notify();
    try {
      await this.idle();
    } finally {
      this.flushing -= 1;
    }
  }

  /**
   * Resolves when the coalescer is empty and no request is in flight. Rejects with the fatal error if
   * delivery fails, or when delivery is stopped with contacts left.
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.options.coalescer.size === 0 && this.inFlight === 0) return;
      if (this.halt.signal.aborted) {
        throw new Error(`delivery was stopped with ${this.options.coalescer.size} contacts undelivered`);
      }
      await this.changed.next();
    }
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    this.halt.abort();
    this.changed.notify();
    if (this.workers) {
      const timer = new AbortController();
      const finished = await Promise.race([
        this.workers.then(() => true),
        this.options.sleep(deadlineMs, timer.signal).then(() => false),
      ]);
      timer.abort();
      if (!finished) {
        this.options.log.warn(
          { requests: this.inFlight, deadlineMs },
          'requests still in flight at the shutdown deadline were abandoned; their contacts stay unacknowledged',
        );
        this.abandon.abort();
      }
      await this.workers;
    }
    this.unsubscribe();
  }

  private get running(): boolean {
    return !this.halt.signal.aborted;
  }

  private async work(): Promise<void> {
    while (this.running) {
      const priority = await this.dueWork();
      if (priority === undefined) return;
      this.claims += 1;
      try {
        if (!this.options.dryRun) await this.options.budget.take(priority, this.halt.signal);
      } catch (error) {
        if (!this.running) return;
        throw error;
      } finally {
        this.claims -= 1;
      }
      if (!this.running) return;
      // Taken only now that the token is here, so the batch holds everything that arrived while waiting.
      const pick = this.pick(this.options.now());
      if (!pick) {
        // Another worker took the batch meanwhile: the token is for whoever has one to send.
        if (!this.options.dryRun) this.options.budget.giveBack();
        continue;
      }
      const taken = this.options.coalescer.take(pick.backlog.targetKey, pick.size);
      const batch: CoalescedContact[] = [];
      const unchanged: CoalescedContact[] = [];
      for (const contact of taken) {
        (contact.live && this.acceptedContacts.unchanged(contact) ? unchanged : batch).push(contact);
      }
      if (unchanged.length > 0) {
        this.options.metrics.contactsUnchanged.inc(unchanged.length);
        this.done(unchanged);
      }
      if (batch.length > 0) await this.deliver(pick.backlog.target, batch);
      else if (!this.options.dryRun) this.options.budget.giveBack();
    }
  }

  /**
   * Waits until there is more due work than workers already waiting for a token, and says whether it is live.
   * Undefined when delivery stops.
   */
  private async dueWork(): Promise<Priority | undefined> {
    // One alarm stays armed across wakes: the worker wakes on every change added, and arming a timer each time
    // (an AbortController, a setTimeout and its listeners) was a sixth of the CPU of a burst (measured).
    let alarm: Alarm | undefined;
    try {
      while (this.running) {
        const now = this.options.now();
        let units = 0;
        let live = false;
        let nextDeadline = Number.POSITIVE_INFINITY;
        for (const backlog of this.options.coalescer.backlogs()) {
          const { due, deadline } = this.dueBatches(backlog, now);
          units += due;
          if (due > 0 && backlog.live > 0) live = true;
          if (deadline !== undefined) nextDeadline = Math.min(nextDeadline, deadline);
        }
        if (units > this.claims) return live ? 'live' : 'backfill';
        if (nextDeadline !== Number.POSITIVE_INFINITY && !alarm?.ringsBy(nextDeadline)) {
          alarm?.cancel();
          alarm = new Alarm(this.options.sleep, now, nextDeadline, () => this.changed.notify());
        }
        await this.changed.next();
        if (alarm?.rang) {
          alarm = undefined;
          // An alarm that rang after a long pause (a full collection) rings before the input that queued up
          // meanwhile is read: letting the stream read it first keeps a burst still merging from looking quiet.
          await setImmediate();
        }
      }
      return undefined;
    } finally {
      alarm?.cancel();
    }
  }

  /**
   * Batches of this target due now, and when the next one falls due if none is. A full batch is due at once,
   * unless changes are still merging into the target's contacts (a burst rewriting the same people): then it
   * waits for a pause of MERGE_QUIET_MS, or at most until its oldest contact has waited the flush interval,
   * since sending now would only mean sending the same contacts again.
   */
  private dueBatches(backlog: TargetBacklog, now: number): { due: number; deadline?: number } {
    const size = this.batchSizeFor(backlog.targetKey);
    const count = backlog.live + backlog.backfill;
    const deadline = backlog.oldestSince + this.options.flushIntervalMs;
    if (this.flushing > 0 || now >= deadline) return { due: Math.ceil(count / size) };
    if (count < size) return { due: 0, deadline };
    const quietAt = backlog.lastMergeAt + MERGE_QUIET_MS;
    if (now >= quietAt) return { due: Math.floor(count / size) };
    return { due: 0, deadline: Math.min(deadline, quietAt) };
  }

  /** The due target to send next: one with live contacts first, then the one waiting longest. */
  private pick(now: number): { backlog: TargetBacklog; size: number } | undefined {
    let best: TargetBacklog | undefined;
    for (const backlog of this.options.coalescer.backlogs()) {
      if (this.dueBatches(backlog, now).due === 0) continue;
      const better =
        !best ||
        (backlog.live > 0 && best.live === 0) ||
        (backlog.live > 0 === best.live > 0 && backlog.oldestSince < best.oldestSince);
      if (better) best = backlog;
    }
    return best && { backlog: best, size: this.batchSizeFor(best.targetKey) };
  }

  private batchSizeFor(key: string): number {
    return Math.min(this.options.batchSize, this.batchLimits.get(key) ?? Number.POSITIVE_INFINITY);
  }

  /** Delivers one taken batch, splitting it as the answers require. Its first request has its token already. */
  private async deliver(target: ListTarget, batch: CoalescedContact[]): Promise<void> {
    this.inFlight += 1;
    try {
      const parts = [batch];
      let tokenHeld = true;
      for (let part = parts.pop(); part; part = parts.pop()) {
        const size = this.batchSizeFor(targetKey(target));
        if (part.length > size) {
          // Learnt from a 413 (here or in another request) after this part was cut: cut it again.
          parts.push(...chunks(part, size).reverse());
          continue;
        }
        const outcome = await this.attempt(target, part, tokenHeld);
        tokenHeld = false;
        // Abandoned (stopping or fatal): the contacts stay in flight, so the checkpoint stays behind them.
        if (!outcome) return;
        switch (outcome.kind) {
          case 'accepted':
            this.accepted(target, part, outcome.listId);
            break;
          case 'invalid':
            if (part.length === 1) await this.reject(part[0]!, outcome.error);
            else parts.push(...halves(part).reverse());
            break;
          case 'tooLarge':
            if (part.length === 1) {
              await this.reject(
                part[0]!,
                `Verbose refused this contact alone as too large (413): ${outcome.error}`,
              );
            } else {
              // Split to the smallest size learnt so far (another request may have learnt one meanwhile).
              const size = this.limitBatchSize(target, part.length);
              parts.push(...chunks(part, size).reverse());
            }
            break;
          case 'unauthorized':
            this.fail(
              new DeliveryFatalError(
                `Verbose refused the API key (HTTP ${outcome.status}). Check verbose.api_key in the configuration ` +
                  '(or the environment variable it names, e.g. VERBOSE_API_KEY) and replace the key if it was ' +
                  'revoked. Nothing further was acknowledged: undelivered changes stay in the replication slot.',
              ),
            );
            return;
        }
      }
    } finally {
      this.inFlight -= 1;
      this.changed.notify();
    }
  }

  /**
   * Sends one part until it gets a non-transient answer, retrying transient failures without limit.
   * Undefined when delivery stops or fails first.
   */
  private async attempt(
    target: ListTarget,
    part: CoalescedContact[],
    tokenHeld: boolean,
  ): Promise<Exclude<UpsertOutcome, { kind: 'transient' }> | undefined> {
    const { budget, client, metrics, log, now } = this.options;
    const contacts = part.map(toVerboseContact);
    if (this.options.dryRun) {
      this.options.dryRun(target, contacts);
      return { kind: 'accepted', status: 200 };
    }
    const priority: Priority = part.some((contact) => contact.live) ? 'live' : 'backfill';
    let failingSince: number | undefined;
    let attempts = 0;
    let alarmed = false;
    try {
      for (;;) {
        if (!tokenHeld) {
          if (!this.running) return undefined;
          try {
            await budget.take(priority, this.halt.signal);
          } catch (error) {
            if (!this.running) return undefined;
            throw error;
          }
        }
        tokenHeld = false;
        const started = now();
        let outcome: UpsertOutcome;
        try {
          outcome = await client.upsert(target, contacts, this.abandon.signal);
        } catch (error) {
          if (this.abandon.signal.aborted) return undefined;
          throw error;
        }
        attempts += 1;
        metrics.requests.inc({ status: String(outcome.status) });
        metrics.batchSize.observe(contacts.length);
        metrics.requestSeconds.observe((now() - started) / 1000);
        if (outcome.kind !== 'transient') {
          const outage = this.requestFailures.recovered();
          if (outage) log.info(outage, 'Verbose answers again');
          if (attempts > 1)
            log.info({ attempts, contacts: contacts.length }, 'a batch got through after retries');
          return outcome;
        }
        failingSince ??= started;
        metrics.retries.inc();
        if (outcome.status === 429) budget.rateLimited(outcome.retryAfterMs);
        else if (outcome.retryAfterMs !== undefined) budget.pause(outcome.retryAfterMs);
        const details = {
          status: outcome.status,
          detail: outcome.detail,
          attempt: attempts,
          contacts: contacts.length,
        };
        this.requestFailures.failed(details);
        if (!alarmed && now() - failingSince >= this.options.retryAlarmMs) {
          alarmed = true;
          this.alarms += 1;
          metrics.retryAlarm.set(1);
          log.error(
            { ...details, retryingForMs: now() - failingSince },
            'RETRY ALARM: one batch has been failing for longer than verbose.retry_alarm_ms; nothing behind it is acknowledged',
          );
        }
        if (!this.running) return undefined;
        // A 429 with Retry-After already paused the budget for exactly that long; other failures back off.
        if (!(outcome.status === 429 && outcome.retryAfterMs !== undefined)) {
          await this.options.sleep(this.backoffMs(attempts), this.halt.signal);
        }
      }
    } finally {
      if (alarmed) {
        this.alarms -= 1;
        if (this.alarms === 0) metrics.retryAlarm.set(0);
      }
    }
  }

  private backoffMs(attempt: number): number {
    const { baseMs, capMs } = this.options.backoff ?? { baseMs: 500, capMs: 30_000 };
    return this.options.random() * Math.min(capMs, baseMs * 2 ** (attempt - 1));
  }

  private accepted(target: ListTarget, part: CoalescedContact[], listId: string | undefined): void {
    if (!this.options.dryRun) {
      this.options.metrics.contactsSent.inc(part.length);
      for (const contact of part) this.acceptedContacts.remember(contact);
    }
    // The list name is sent every time, never swapped for this id: `list` finds or creates the list, while
    // `list_id` fails once the list is deleted in Verbose, which would turn every contact into a reject.
    if ('list' in target && listId !== undefined && !this.knownListIds.has(target.list)) {
      this.knownListIds.add(target.list);
      this.options.log.info({ list: target.list, listId }, 'Verbose list resolved');
    }
    this.done(part);
  }

  private async reject(contact: CoalescedContact, reason: string): Promise<void> {
    const recorded = await this.options.rejects.append(
      {
        origin: contact.origin,
        reason,
        commitLsn: contact.lastLsn,
        contact: { target: contact.target, phone: contact.phone, fields: { ...contact.fields } },
      },
      'api',
    );
    if (recorded) {
      this.options.metrics.rejects.inc({ stage: 'api' });
      this.options.log.warn(
        { table: contact.origin.table, phone: contact.phone, reason },
        'Verbose refused a contact; it is set aside in rejects.jsonl',
      );
    } else {
      this.options.log.debug(
        { table: contact.origin.table, phone: contact.phone, reason },
        'Verbose refused a contact again, as rejects.jsonl already says',
      );
    }
    this.done([contact]);
  }

  private done(contacts: CoalescedContact[]): void {
    this.options.coalescer.complete(contacts);
    this.options.checkpoint.refresh();
  }

  /** Lowers the target's batch size below a refused one; returns the size to split the refused part into. */
  private limitBatchSize(target: ListTarget, refusedSize: number): number {
    const key = targetKey(target);
    const limit = Math.max(1, Math.ceil(refusedSize / 2));
    if (limit < this.batchSizeFor(key)) {
      this.batchLimits.set(key, limit);
      this.options.log.warn(
        { target, batchSize: limit },
        'Verbose refused a batch as too large (413); sending smaller ones',
      );
    }
    return this.batchSizeFor(key);
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    const fatal =
      error instanceof DeliveryFatalError
        ? error
        : new DeliveryFatalError(`delivery stopped: ${errorMessage(error)}`, {
            cause: error,
          });
    this.failure = fatal;
    this.options.checkpoint.hold();
    this.halt.abort();
    this.abandon.abort();
    this.changed.notify();
    this.options.log.error({ err: fatal }, fatal.message);
    this.resolveFatal(fatal);
    this.options.onFatal?.(fatal);
  }
}

function halves<T>(items: T[]): T[][] {
  return chunks(items, Math.ceil(items.length / 2));
}

function chunks<T>(items: T[], size: number): T[][] {
  const parts: T[][] = [];
  for (let at = 0; at < items.length; at += size) parts.push(items.slice(at, at + size));
  return parts;
}
