import type pg from 'pg';
import { LogicalReplicationService, type Pgoutput } from 'pg-logical-replication';
import type { Lsn, RowChange } from '../domain.js';
import { asError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { formatLsn, parseLsn } from '../lsn.js';
import type { Metrics } from '../ops/metrics.js';
import { RepeatedFailure } from '../ops/repeatedFailure.js';
import { ChangeDecoder, TextPgoutputPlugin } from './pgoutput.js';
import {
  quoteIdent,
  SLOT_SQL,
  SlotLostError,
  type SlotState,
  SourceError,
  slotLostReason,
  slotState,
  sqlState,
} from './setup.js';
import { SideConnection } from './sideConnection.js';
import { TYPE_LOOKUP_SQL, TypeDecoders, type TypeInfo } from './values.js';

/** A logical decoding message (`pg_logical_emit_message`) other than our heartbeat. */
export interface LogicalMessage {
  prefix: string;
  /** The content as UTF-8 text. */
  content: string;
  /**
   * For a standalone message, the position it closes: one before the end of its record, so that a transaction
   * whose commit record starts right after it is not closed with it. For a transactional one, its end.
   */
  lsn: Lsn;
  /** Written inside a transaction (delivered between its changes, before its commit) or on its own. */
  transactional: boolean;
}

/**
 * What the stream delivers to. Calls are strictly sequential: the next one starts only after the previous
 * one's promise settled, in stream order. None may throw (a throw is a fatal error of the stream).
 *
 * For a transaction: `change()` for each row change in commit order, then `commit(commitLsn)`. Transactions
 * arrive whole and in commit order (no interleaving). `commit()` is also called with the position of a
 * standalone (non-transactional) logical message, heartbeats included: a position that closes no changes,
 * so the checkpoint may move there once nothing older is pending. Positions passed to `commit()` increase,
 * except after `rollback()`.
 */
export interface ChangeHandler {
  /** Awaited: while it is pending, reading pauses (flow control) but status updates keep going out. */
  change(change: RowChange): Promise<void> | void;
  /** The end of a transaction (or a heartbeat/standalone message position that closes nothing). */
  commit(commitLsn: Lsn): Promise<void> | void;
  /** A logical message other than our heartbeat (full-resync watermarks); `lsn` is its position. */
  message(message: LogicalMessage): Promise<void> | void;
  /**
   * The connection dropped and streaming is about to restart from the acknowledged position. Changes
   * (and transactional messages) received since the last `commit()` belong to a transaction that will be
   * sent again in full: drop them. Transactions already committed but not yet acknowledged may also be
   * sent again (same changes, same commit LSN): downstream must treat those idempotently.
   */
  rollback?(): Promise<void> | void;
}

export interface ChangeStreamOptions {
  /** libpq URL of the CRM database (an `options=-c …` parameter in it is kept). */
  url: string;
  slot: string;
  publication: string;
  /** How often the acknowledged position is sent to the server (also when the handler is blocked). */
  statusIntervalMs: number;
  /** How often a heartbeat message is written to the WAL so an idle slot can advance; 0 turns it off. */
  heartbeatIntervalMs: number;
  handler: ChangeHandler;
  /**
   * The commit LSN of the newest transaction (or position passed to `commit()`) whose every change was
   * delivered; 0n when nothing was. This is what status updates report (never less than the slot already
   * has), and streaming (re)starts right after it. One exception: when the server asks for a reply (it does
   * so when shutting down) and every position passed to `commit()` is acknowledged, the reply reports the
   * end of what the server sent, which holds no undelivered transaction.
   */
  acknowledged: () => Lsn;
  log: Logger;
  metrics: Metrics;
  /** Delay before reconnecting after a drop: starts at `minMs`, doubles up to `maxMs`, with jitter. */
  reconnect?: { minMs: number; maxMs: number };
  /** How often a standby (the slot is in use by another process) tries to take the slot over. Default 5 s. */
  standbyRetryMs?: number;
  /** Per `schema.table`, the key columns to put in `RowChange.key` (`SourceReport.keyColumns`). */
  keyColumns?: ReadonlyMap<string, readonly string[]>;
  /**
   * With nothing heard from the server for this long while not waiting on the handler, the connection is
   * considered dead (a network cut that closes nothing) and replaced. Default max(60 s, 6 status intervals).
   */
  silenceTimeoutMs?: number;
}

/** The prefix of our heartbeat messages. */
export const HEARTBEAT_PREFIX = 'verbose_sync_heartbeat';

/**
 * Settings for the replication session (libpq `options`), so values arrive in the text forms `values.ts`
 * decodes whatever the server's defaults are. Any other connection whose rows go through `values.ts` (the
 * full resync's reads) should use them too.
 */
export const SESSION_OPTIONS =
  '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=1';

interface Session {
  service: LogicalReplicationService;
  plugin: TextPgoutputPlugin;
  /** No handler call starts once closed. */
  closed: boolean;
  /** START_REPLICATION was accepted. */
  started: boolean;
  /** Heard anything from the server: the backoff starts over after such a session. */
  heard: boolean;
  lastHeardAt: number;
  /** A handler call is pending (the stream is paused on it). */
  busy: boolean;
  /** Messages whose handling finished (compare with `plugin.received`). */
  completed: number;
  /** The last position passed to `handler.commit()` in this session. */
  lastCommitPassed: Lsn | undefined;
  /** The last keepalive that asked for a reply: its position and how many messages had arrived before it. */
  replyRequested: { lsn: Lsn; received: number } | undefined;
  inFlight: Promise<void>;
  /** The slot's confirmed position when we connected, minus one: never acknowledge below it. */
  floor: Lsn;
  backendPid: number | undefined;
  /** Why we closed it ourselves. */
  dropReason: Error | undefined;
  /** The commit LSN of the transaction being received. */
  transaction: Lsn | undefined;
}

type Outcome =
  | { kind: 'stopped' }
  | { kind: 'dropped'; error: unknown; healthy: boolean }
  | { kind: 'standby'; pid: number }
  | { kind: 'fatal'; error: Error };

const STOPPED = Symbol('stopped');

/** A failure that a reconnect may cure (as opposed to a bug or a lost slot). */
class TransientError extends Error {}

/**
 * The replication connection: streams the slot through pgoutput and hands row changes, commit boundaries and
 * logical messages to a `ChangeHandler`, acknowledging only `acknowledged()`.
 *
 * Lifecycle: `start()` resolves once streaming, or once waiting as a standby behind another process that
 * holds the slot; it rejects on a fatal error before that (while the server is unreachable it keeps trying
 * and stays pending). `stop()` is safe to call twice or concurrently: it stops handler calls, sends a final
 * status with `acknowledged()` and closes both connections; it does not wait for a handler call in progress.
 *
 * Fatal errors end the stream and reject `done` (which resolves after `stop()`): `SlotLostError` when the slot
 * was dropped or invalidated, `SourceError` when the publication was dropped or the login is refused, and any
 * error thrown by the handler. Drops (server restart, network, terminated walsender) are not fatal: the
 * stream calls `handler.rollback()` and reconnects with backoff from `acknowledged()`.
 */
export class ChangeStream {
  /** Settles when the stream has ended: resolves after `stop()`, rejects with the fatal error that ended it. */
  readonly done: Promise<void>;
  /** Resolves when streaming first begins: at once after `start()`, or when a standby takes the slot over. */
  readonly streamingBegan: Promise<void>;
  private resolveStreamingBegan!: () => void;

  private readonly options: ChangeStreamOptions;
  private readonly log: Logger;
  private readonly types: TypeDecoders;
  private readonly decoder: ChangeDecoder;
  private readonly side: SideConnection;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;
  private starting: Promise<void> | undefined;
  private resolveStart: (() => void) | undefined;
  private rejectStart: ((error: Error) => void) | undefined;
  private stopping: Promise<void> | undefined;
  private stopRequested = false;
  private readonly stopSignal: Promise<void>;
  private signalStop!: () => void;
  private fatal: Error | undefined;
  private loop: Promise<void> | undefined;
  private session: Session | undefined;
  private timers: NodeJS.Timeout[] = [];
  private everStreamed = false;
  private needsRollback = false;
  private lastBackendPid: number | undefined;
  private standbySince: number | undefined;
  private checkingSlot = false;
  private heartbeatRunning = false;
  private heartbeatFailing = false;
  private handled = 0;
  private receivedBefore = 0;
  /** Rolls up reconnect attempts: an outage logs its first failure, then a summary a minute. */
  private readonly reconnectFailures: RepeatedFailure;

  constructor(options: ChangeStreamOptions) {
    this.options = options;
    this.log = options.log.child({ component: 'source', slot: options.slot });
    this.reconnectFailures = new RepeatedFailure({
      log: this.log,
      now: Date.now,
      firstMessage: 'replication connection lost; reconnecting',
      ongoingMessage: 'replication connection still failing; reconnecting',
    });
    this.side = new SideConnection(options.url, () => this.onServerShutdown());
    this.types = new TypeDecoders((oids) => this.side.query<TypeInfo>(TYPE_LOOKUP_SQL, [oids]));
    this.decoder = new ChangeDecoder(this.types, options.keyColumns);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // `done` is for whoever wants to watch it; an unwatched fatal error must not crash the process.
    this.done.catch(() => {});
    this.stopSignal = new Promise((resolve) => {
      this.signalStop = resolve;
    });
    this.streamingBegan = new Promise((resolve) => {
      this.resolveStreamingBegan = resolve;
    });
  }

  /** Waiting for another process to release the slot. */
  get standingBy(): boolean {
    return this.standbySince !== undefined;
  }

  /** Streaming now (false while connecting, reconnecting or waiting as a standby). */
  get connected(): boolean {
    return this.session?.started === true && !this.session.closed;
  }

  /**
   * Messages received from the server and messages handed to the handler so far (all connections). The
   * difference is what sits in the library's queue: with flow control it stays around one socket read.
   */
  get stats(): { received: number; handled: number } {
    return { received: this.receivedBefore + (this.session?.plugin.received ?? 0), handled: this.handled };
  }

  start(): Promise<void> {
    if (this.stopRequested)
      return Promise.reject(new Error('this ChangeStream was stopped; create a new one'));
    this.starting ??= new Promise<void>((resolve, reject) => {
      this.resolveStart = resolve;
      this.rejectStart = reject;
      this.startTimers();
      this.loop = this.run()
        .catch((error: unknown) => {
          this.fatal ??= asError(error);
        })
        .then(() => this.finish());
    });
    return this.starting;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopRequested = true;
      this.clearTimers();
      const session = this.session;
      if (session) {
        const streaming = session.started && !session.closed;
        // No handler call starts from here on; one in progress is not waited for (it may be blocked on
        // backpressure that only clears once the caller moves on).
        session.closed = true;
        if (streaming) await this.sendFinalStatus(session);
        await session.service.stop().catch(() => {});
        // The walsender exits a moment after we close: wait for it, so that a standby or a restarted
        // daemon finds the slot free at once instead of taking it for another instance's.
        const pid = session.backendPid;
        if (streaming && pid !== undefined) await this.pollSlot((slot) => slot?.activePid !== pid);
      }
      this.signalStop();
      await this.side.close();
      if (this.loop) await this.loop;
      else await this.finish();
    })();
    return this.stopping;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopRequested && !this.fatal) {
      const outcome = await this.runSession();
      if (this.stopRequested || this.fatal || outcome.kind === 'stopped') return;
      if (outcome.kind === 'fatal') {
        this.fail(outcome.error);
        return;
      }
      if (outcome.kind === 'standby') {
        if (this.standbySince === undefined) {
          this.standbySince = Date.now();
          this.log.info(
            { activePid: outcome.pid },
            'the replication slot is in use by another process: waiting as a standby to take it over',
          );
          this.resolveStart?.();
        }
        await this.sleep(this.options.standbyRetryMs ?? 5_000);
        continue;
      }
      failures = outcome.healthy ? 1 : failures + 1;
      const { minMs, maxMs } = this.options.reconnect ?? { minMs: 500, maxMs: 30_000 };
      const base = Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 30));
      const delay = Math.round(base / 2 + (Math.random() * base) / 2);
      this.reconnectFailures.failed({
        err: errorMessage(outcome.error),
        attempt: failures,
        retryInMs: delay,
      });
      await this.sleep(delay);
    }
  }

  private async runSession(): Promise<Outcome> {
    let slot: SlotState;
    try {
      const state = await this.unlessStopped(this.inspect());
      if (state === STOPPED) return { kind: 'stopped' };
      const problem = this.sourceProblem(state);
      if (problem) return { kind: 'fatal', error: problem };
      slot = state.slot!;
    } catch (error) {
      return { kind: 'dropped', error, healthy: false };
    }

    if (this.needsRollback) {
      try {
        if ((await this.unlessStopped(Promise.resolve(this.options.handler.rollback?.()))) === STOPPED) {
          return { kind: 'stopped' };
        }
      } catch (error) {
        return { kind: 'fatal', error: asError(error) };
      }
      this.needsRollback = false;
    }
    if (this.stopRequested) return { kind: 'stopped' };

    const acknowledged = this.options.acknowledged();
    // Everything up to the acknowledged commit was delivered; the server skips transactions whose commit
    // record starts before the start position.
    const startLsn = acknowledged > 0n ? acknowledged + 1n : 0n;
    const confirmed = slot.confirmedFlushLsn ?? 0n;
    const service = new LogicalReplicationService(replicationClientConfig(this.options.url), {
      // The library's timer would acknowledge the last *received* LSN (issue #174): we send status ourselves.
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: true },
    });
    const plugin = new TextPgoutputPlugin({
      protoVersion: 1,
      publicationNames: [this.options.publication],
      messages: true,
    });
    const session: Session = {
      service,
      plugin,
      closed: false,
      started: false,
      heard: false,
      lastHeardAt: Date.now(),
      busy: false,
      completed: 0,
      lastCommitPassed: undefined,
      replyRequested: undefined,
      inFlight: Promise.resolve(),
      floor: confirmed > 0n ? confirmed - 1n : 0n,
      backendPid: undefined,
      dropReason: undefined,
      transaction: undefined,
    };
    this.session = session;
    service.on('error', (error: Error) => {
      // The same failure also ends subscribe(), which is where it is handled.
      this.log.debug({ err: errorMessage(error) }, 'replication connection error');
    });
    service.on('start', () => this.onStart(session));
    service.on('heartbeat', (lsn: string, _timestamp: number, shouldRespond: boolean) => {
      session.heard = true;
      session.lastHeardAt = Date.now();
      if (shouldRespond) {
        session.replyRequested = { lsn: parseLsn(lsn), received: plugin.received };
        this.sendStatus(session, false);
      }
    });
    service.on('data', (lsn: string, message: Pgoutput.Message) => this.onData(session, lsn, message));

    let error: unknown;
    try {
      await service.subscribe(plugin, this.options.slot, formatLsn(startLsn));
    } catch (e) {
      error = e;
    }
    session.closed = true;
    if (this.session === session) this.session = undefined;
    this.receivedBefore += plugin.received;
    await service.stop().catch(() => {});
    if (session.started) this.needsRollback = true;
    // A handler call from this session may still be running: the next session must not overlap it.
    await Promise.race([session.inFlight, this.stopSignal]);
    if (this.stopRequested) return { kind: 'stopped' };
    const cause = session.dropReason ?? error ?? new Error('the server ended the replication stream');
    return this.classify(cause, session.heard);
  }

  private classify(error: unknown, healthy: boolean): Outcome {
    const code = sqlState(error);
    const message = errorMessage(error);
    const slot = this.options.slot;
    const active = /is active for PID (\d+)/.exec(message);
    if (code === '55006' && active) {
      const pid = Number(active[1]);
      // Our own previous walsender may still be exiting after a drop: that is a reconnect, not a standby.
      if (pid === this.lastBackendPid) return { kind: 'dropped', error, healthy };
      return { kind: 'standby', pid };
    }
    if (code === '42704' && /replication slot/i.test(message)) {
      return { kind: 'fatal', error: new SlotLostError(slot, 'no longer exists') };
    }
    if (code === '55000' && /invalidated|can no longer get changes/i.test(message)) {
      return { kind: 'fatal', error: new SlotLostError(slot, `was invalidated (${message})`) };
    }
    if (code === '42704' && /publication/i.test(message)) {
      return {
        kind: 'fatal',
        error: new SourceError(
          `${message}. Start verbose-sync again to create it for the mapped tables, or run ` +
            `CREATE PUBLICATION ${quoteIdent(this.options.publication)} FOR TABLE …;`,
        ),
      };
    }
    if (code === '28P01' || code === '28000' || code === '3D000' || code === '42501') {
      return { kind: 'fatal', error: new SourceError(`Cannot stream from the source database: ${message}`) };
    }
    return { kind: 'dropped', error, healthy };
  }

  private onStart(session: Session): void {
    if (session.closed) return;
    session.started = true;
    session.lastHeardAt = Date.now();
    session.backendPid = (
      session.service as unknown as { _client?: { processID?: number } }
    )._client?.processID;
    this.lastBackendPid = session.backendPid;
    if (this.standbySince !== undefined) {
      this.log.info('the replication slot was released: this instance took it over');
      this.standbySince = undefined;
    }
    if (this.everStreamed) {
      this.options.metrics.reconnects.inc();
      this.log.info({ ...this.reconnectFailures.recovered() }, 'replication stream reconnected');
    } else {
      this.log.info({ publication: this.options.publication }, 'replication stream started');
    }
    this.everStreamed = true;
    this.resolveStreamingBegan();
    this.sendStatus(session, false);
    this.resolveStart?.();
  }

  private onData(session: Session, lsn: string, message: Pgoutput.Message): Promise<void> {
    if (session.closed) return Promise.resolve();
    session.heard = true;
    session.busy = true;
    const work = this.dispatch(session, lsn, message)
      .catch((error: unknown) => {
        if (error instanceof TransientError) this.dropSession(session, error);
        else this.fail(asError(error));
      })
      .finally(() => {
        session.busy = false;
        session.completed++;
        session.lastHeardAt = Date.now();
      });
    session.inFlight = work;
    return work;
  }

  private async dispatch(session: Session, wireLsn: string, message: Pgoutput.Message): Promise<void> {
    const handler = this.options.handler;
    this.handled++;
    switch (message.tag) {
      case 'begin':
        session.transaction = parseLsn(message.commitLsn ?? wireLsn);
        return;
      case 'relation': {
        const oids = ChangeDecoder.typeOids(message);
        if (this.types.needsLookup(oids)) {
          try {
            await this.types.resolve(oids);
          } catch (error) {
            throw new TransientError(
              `could not look up the column types of ${message.schema}.${message.name}: ${errorMessage(error)}`,
            );
          }
        }
        return;
      }
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate': {
        const commitLsn = session.transaction;
        if (commitLsn === undefined) throw new Error(`pgoutput sent a ${message.tag} outside a transaction`);
        for (const change of this.decoder.changes(message, commitLsn)) {
          if (session.closed) return;
          this.options.metrics.changesReceived.inc({ table: change.table, op: change.op });
          await handler.change(change);
        }
        return;
      }
      case 'commit': {
        const commitLsn = session.transaction ?? parseLsn(message.commitLsn ?? wireLsn);
        session.transaction = undefined;
        if (session.closed) return;
        session.lastCommitPassed = commitLsn;
        await handler.commit(commitLsn);
        return;
      }
      case 'message': {
        if (session.closed) return;
        const end = parseLsn(message.messageLsn ?? wireLsn);
        // A standalone message's LSN is where its record ends, which is where the next commit record may
        // start: a transaction committing right after it has that very LSN as its commit LSN. Closing (and so
        // acknowledging) the message's LSN would skip that transaction; one less lies inside the message's
        // own record and closes nothing else.
        const lsn = message.transactional ? end : end - 1n;
        if (!message.transactional && message.prefix === HEARTBEAT_PREFIX) {
          session.lastCommitPassed = lsn;
          await handler.commit(lsn);
          return;
        }
        await handler.message({
          prefix: message.prefix,
          content: Buffer.from(message.content).toString('utf8'),
          lsn,
          transactional: message.transactional,
        });
        // A standalone message sits between transactions: its position closes nothing that came before.
        if (!message.transactional && !session.closed) {
          session.lastCommitPassed = lsn;
          await handler.commit(lsn);
        }
        return;
      }
      default:
        return; // type and origin messages carry nothing we use
    }
  }

  /** Sends a standby status update carrying the acknowledged position. */
  private sendStatus(session: Session | undefined, ping: boolean): Lsn | undefined {
    if (!session || session.closed || !session.started) return undefined;
    return this.acknowledge(session, ping);
  }

  private acknowledge(session: Session, ping: boolean): Lsn | undefined {
    const acknowledged = this.options.acknowledged();
    let lsn = acknowledged;
    // Never report less than the slot already has: older servers would move confirmed_flush_lsn back.
    if (lsn < session.floor) lsn = session.floor;
    // A server shutting down (or about to time us out) asks for a reply and waits until we report exactly
    // the position it has sent: PostgreSQL's shutdown waits for its walsenders, and they wait for that.
    // Once every message that came before that keepalive was handled and every commit passed on is
    // acknowledged, no transaction committed before that position is undelivered (a transaction is sent
    // only once its commit record was read), so reporting it loses nothing. PostgreSQL's own subscriber
    // does the same when it has no pending transactions.
    const requested = session.replyRequested;
    if (
      requested &&
      session.completed >= requested.received &&
      (session.lastCommitPassed === undefined || acknowledged >= session.lastCommitPassed) &&
      requested.lsn - 1n > lsn
    ) {
      lsn = requested.lsn - 1n;
    }
    if (lsn <= 0n) return undefined;
    // The library reports `lsn + 1` as written, flushed and applied: everything up to and including the
    // acknowledged commit record's start is done, so the server will not send that transaction again.
    session.service.acknowledge(formatLsn(lsn), ping).catch((error: unknown) => {
      this.log.debug({ err: errorMessage(error) }, 'could not send a status update');
    });
    return lsn;
  }

  /** The last status before closing; waits (briefly) until the server has taken it into account. */
  private async sendFinalStatus(session: Session): Promise<void> {
    const lsn = this.acknowledge(session, false);
    if (lsn === undefined) return;
    const confirmed = await this.pollSlot((slot) => !slot || (slot.confirmedFlushLsn ?? 0n) >= lsn + 1n);
    if (!confirmed) {
      this.log.warn(
        { acknowledged: formatLsn(lsn) },
        'the server did not confirm the final status update in time',
      );
    }
  }

  /**
   * Reads the slot until `done(slot)` holds, for at most `timeoutMs`; false when it did not (or the slot could
   * not be read).
   */
  private async pollSlot(
    done: (slot: SlotState | undefined) => boolean,
    timeoutMs = 2_000,
  ): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
      });
      try {
        const slot = await Promise.race([this.readSlot(), timeout]);
        if (slot === 'timeout') return false;
        if (done(slot)) return true;
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return false;
  }

  private startTimers(): void {
    const status = setInterval(() => this.tick(), Math.max(10, this.options.statusIntervalMs));
    status.unref();
    this.timers.push(status);
    if (this.options.heartbeatIntervalMs > 0) {
      const heartbeat = setInterval(() => void this.emitHeartbeat(), this.options.heartbeatIntervalMs);
      heartbeat.unref();
      this.timers.push(heartbeat);
    }
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  private tick(): void {
    const session = this.session;
    // Ask for a reply: the server's keepalive answer proves the connection is alive.
    this.sendStatus(session, true);
    const silenceMs = this.options.silenceTimeoutMs ?? Math.max(60_000, 6 * this.options.statusIntervalMs);
    if (
      session?.started &&
      !session.closed &&
      !session.busy &&
      Date.now() - session.lastHeardAt > silenceMs
    ) {
      this.dropSession(
        session,
        new TransientError(`nothing heard from the server for ${Math.round(silenceMs / 1000)} s`),
      );
    }
    void this.checkSlot();
  }

  /** Replication lag for the metric; a slot or publication dropped (or a slot invalidated) under us. */
  private async checkSlot(): Promise<void> {
    if (this.checkingSlot || this.stopRequested || this.fatal) return;
    this.checkingSlot = true;
    try {
      const state = await this.inspect();
      if (this.stopRequested) return;
      const problem = this.sourceProblem(state);
      if (problem) {
        this.fail(problem);
        return;
      }
      if (state.lag !== null) this.options.metrics.replicationLagBytes.set(Math.max(0, state.lag));
    } catch (error) {
      this.log.debug({ err: errorMessage(error) }, 'could not read the replication slot state');
    } finally {
      this.checkingSlot = false;
    }
  }

  /** The slot, whether the publication exists, and the bytes of WAL between the server and the slot. */
  private async inspect(): Promise<{
    slot: SlotState | undefined;
    publication: boolean;
    lag: number | null;
  }> {
    const rows = await this.side.query<{
      s: Record<string, unknown> | null;
      publication: boolean;
      lag: number | null;
    }>(
      `SELECT to_jsonb(s) AS s,
              EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2) AS publication,
              pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                   ELSE pg_current_wal_lsn() END, s.confirmed_flush_lsn)::float8 AS lag
         FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`,
      [this.options.slot, this.options.publication],
    );
    const row = rows[0]!;
    return { slot: row.s ? slotState(row.s) : undefined, publication: row.publication, lag: row.lag };
  }

  /** A fatal problem with the slot or the publication, if there is one. */
  private sourceProblem(state: { slot: SlotState | undefined; publication: boolean }): Error | undefined {
    if (!state.slot) return new SlotLostError(this.options.slot, 'no longer exists');
    const lost = slotLostReason(state.slot);
    if (lost) return new SlotLostError(this.options.slot, lost);
    if (!state.publication) {
      // PostgreSQL 18 streams nothing for a missing publication, without an error: changes would be skipped.
      return new SourceError(
        `Publication "${this.options.publication}" no longer exists, so changes of the mapped tables are not ` +
          'streamed. Start verbose-sync again to recreate it, then run `verbose-sync --full-resync` to load ' +
          'what changed meanwhile.',
      );
    }
    return undefined;
  }

  private async emitHeartbeat(): Promise<void> {
    if (!this.connected || this.heartbeatRunning) return;
    this.heartbeatRunning = true;
    try {
      await this.side.query('SELECT pg_logical_emit_message(false, $1::text, $2::text)', [
        HEARTBEAT_PREFIX,
        '',
      ]);
      this.options.metrics.heartbeats.inc();
      if (this.heartbeatFailing) this.log.info('heartbeats are written again');
      this.heartbeatFailing = false;
    } catch (error) {
      if (!this.heartbeatFailing) {
        this.log.warn(
          { err: errorMessage(error) },
          'could not write a heartbeat message; an idle publication may hold WAL on the server until it works',
        );
      }
      this.heartbeatFailing = true;
    } finally {
      this.heartbeatRunning = false;
    }
  }

  private async readSlot(): Promise<SlotState | undefined> {
    const rows = await this.side.query<{ s: Record<string, unknown> }>(SLOT_SQL, [this.options.slot]);
    return rows[0] ? slotState(rows[0].s) : undefined;
  }

  /**
   * A stopping server waits for its walsenders, and a walsender waits until we report its whole output as
   * flushed, which we cannot do while undelivered changes are pending (the handler may be blocked for long,
   * with the stream paused): close the replication connection so the server can stop; we reconnect once it
   * is back and receive again whatever was not acknowledged.
   */
  private onServerShutdown(): void {
    const session = this.session;
    if (session?.started && !session.closed) {
      this.dropSession(session, new TransientError('the server is shutting down'));
    }
  }

  /** Ends the session so the loop reconnects. */
  private dropSession(session: Session, reason: Error): void {
    if (session.closed) return;
    session.dropReason = reason;
    session.closed = true;
    void session.service.stop().catch(() => {});
  }

  private fail(error: Error): void {
    if (this.fatal || this.stopRequested) return;
    this.fatal = error;
    this.log.error(
      { err: errorMessage(error), kind: error.name },
      'the change stream stopped on a fatal error',
    );
    this.clearTimers();
    if (this.session) this.dropSession(this.session, error);
    this.signalStop();
  }

  private async finish(): Promise<void> {
    this.clearTimers();
    // When stopping, stop() still uses the side connection (final status) and closes it itself.
    if (!this.stopRequested) await this.side.close();
    if (this.fatal) {
      this.rejectStart?.(this.fatal);
      this.rejectDone(this.fatal);
    } else {
      this.resolveStart?.();
      this.resolveDone();
    }
  }

  /** `promise`, or STOPPED as soon as the stream is stopping (or failed). */
  private unlessStopped<T>(promise: Promise<T>): Promise<T | typeof STOPPED> {
    return Promise.race([promise, this.stopSignal.then((): typeof STOPPED => STOPPED)]);
  }

  private sleep(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
      this.stopSignal,
    ]).finally(() => clearTimeout(timer));
  }
}

/** The replication connection's config: the URL with our session settings added to its own `options`. */
function replicationClientConfig(url: string): pg.ClientConfig {
  let connectionString = url;
  let userOptions = process.env.PGOPTIONS ?? '';
  try {
    const parsed = new URL(url);
    const fromUrl = parsed.searchParams.get('options');
    if (fromUrl !== null) {
      userOptions = fromUrl;
      parsed.searchParams.delete('options');
      connectionString = parsed.toString();
    }
  } catch {
    // not a URL (key=value form): pg parses it as is
  }
  return {
    connectionString,
    // Ours last: the decoding depends on them.
    options: [userOptions, SESSION_OPTIONS].filter(Boolean).join(' '),
    application_name: 'verbose-sync',
    keepAlive: true,
    connectionTimeoutMillis: 15_000,
  };
}
