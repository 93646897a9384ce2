import pg from 'pg';
import { ChangeRouter } from './changeRouter.js';
import type { Config } from './config/schema.js';
import type { Checkpoint } from './delivery/checkpoint.js';
import { CheckpointStore } from './delivery/checkpointStore.js';
import { type Now, type Sleep, systemNow, systemSleep } from './delivery/clock.js';
import type { Coalescer, VerboseContact } from './delivery/coalescer.js';
import { type Delivery, DeliveryFatalError } from './delivery/delivery.js';
import { buildDeliveryStage, verboseClient } from './delivery/deliveryStage.js';
import type { ContactSender, VerboseClient } from './delivery/verboseClient.js';
import type { ListTarget, Lsn } from './domain.js';
import { asError } from './errors.js';
import { FirstStartMarker } from './firstStartMarker.js';
import type { Logger } from './log.js';
import { Mapper } from './mapping/mapper.js';
import type { Metrics } from './ops/metrics.js';
import type { ProbeResult } from './ops/opsServer.js';
import { RepeatedFailure } from './ops/repeatedFailure.js';
import { Backfill } from './resync/backfill.js';
import { ProgressStore, ResyncProgressError } from './resync/progressStore.js';
import { ResyncSchedule } from './resync/schedule.js';
import { ChangeStream, SESSION_OPTIONS } from './source/changeStream.js';
import { prepareSource } from './source/setup.js';
import { checkStateDirWritable, ensureStateDir, StateFileError } from './stateFiles.js';

export interface DaemonOptions {
  /** `--full-resync`: load every existing row while the stream runs. */
  fullResync: boolean;
  /** `--dry-run`: print each request instead of sending it; acknowledge nothing. */
  dryRun: boolean;
  /** Where `--dry-run` requests go (the CLI prints them as JSON lines). */
  printRequest?: (request: { target: ListTarget; contacts: VerboseContact[] }) => void;
  /** How often a running full resync logs its progress (10 s, or 1 s for the terminal bar, by default). */
  resyncProgressIntervalMs?: number | undefined;
  log: Logger;
  metrics: Metrics;
  now?: Now;
  sleep?: Sleep;
}

/** A pipeline started with a time of no API outcome this long while work waits is considered wedged. */
const WEDGED_AFTER_MS = 5 * 60_000;
/** After a resync stops on an error (a dropped connection, say), it resumes from its progress after this. */
const RESYNC_RETRY_MS = 5_000;

/**
 * Wires the stages: source ─▶ mapping ─▶ coalescer ─▶ delivery, with the checkpoint acknowledging only what was
 * delivered, and the full resync feeding the same pipeline between watermarks.
 *
 * `start()` resolves once streaming (or standing by behind another instance); `done` settles when the daemon
 * has stopped: it resolves after `stop()` and rejects with the fatal error that stopped it otherwise.
 */
export class Daemon {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly now: Now;
  private readonly sleep: Sleep;
  private readonly mapper: Mapper;
  private readonly resources: { name: string; close: () => Promise<unknown> }[] = [];
  private stream: ChangeStream | undefined;
  private delivery: Delivery | undefined;
  private coalescer: Coalescer | undefined;
  private checkpoint: Checkpoint | undefined;
  private store: CheckpointStore | undefined;
  private backfill: Backfill | undefined;
  private starting: Promise<void> | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;
  /** Set once stopping: handler calls from then on wait forever, so nothing more is recorded as received. */
  private halted = false;
  private lastApiOutcome: { ok: boolean; at: number; detail: string } | undefined;
  private resyncFailures: RepeatedFailure | undefined;

  constructor(
    private readonly config: Config,
    private readonly options: DaemonOptions,
  ) {
    this.log = options.log;
    this.metrics = options.metrics;
    this.now = options.now ?? systemNow;
    this.sleep = options.sleep ?? systemSleep;
    this.mapper = Mapper.fromConfig(config);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {});
  }

  /**
   * Starts the pipeline. A `stop()` while it runs ends it early: it then rejects with `StartInterrupted`, and
   * `done` resolves once what was already opened is closed.
   */
  start(): Promise<void> {
    this.starting ??= this.startup();
    return this.starting;
  }

  /** Between the steps of start-up: a stop requested meanwhile ends it here. */
  private continueStarting(): void {
    if (this.halted) throw new StartInterrupted();
  }

  private async startup(): Promise<void> {
    const { config, log } = this;
    await ensureStateDir(config.state_dir);
    await checkStateDirWritable(config.state_dir);
    const client = verboseClient(config);
    this.resources.push({ name: 'Verbose client', close: () => client.close() });
    // Before anything is created on the database: a refused key or a wrong URL leaves no slot behind.
    await this.checkApiKey(client);
    this.continueStarting();
    const store = new CheckpointStore({
      stateDir: config.state_dir,
      slot: config.source.slot,
      now: this.now,
      sleep: this.sleep,
      onError: (error) => this.fail(error),
    });
    this.store = store;
    const saved = await store.load();
    const marker = new FirstStartMarker(config.state_dir);
    const interruptedFirstStart = await marker.exists();
    const markerWritten = saved === undefined && !interruptedFirstStart;
    if (markerWritten) await marker.write();

    const report = await prepareSource({
      url: config.source.url,
      slot: config.source.slot,
      publication: config.source.publication,
      tables: this.mapper.tables(),
      mappedColumns: new Map(this.mapper.tables().map((table) => [table, this.mapper.columnsOf(table)])),
      lostSlot: this.options.fullResync ? 'recreate' : 'error',
      // With a checkpoint the slot existed: a new one would skip what changed while it was gone, so only
      // --full-resync (which reloads every row) may create it again. Every start fails until then.
      missingSlot: saved !== undefined && !this.options.fullResync ? 'error' : 'create',
      log,
    });
    this.continueStarting();
    const firstStart = (report.slotCreated && saved === undefined) || interruptedFirstStart;
    // The slot was there: the checkpoint file was removed on purpose, and the slot's position is where to go on.
    if (markerWritten && !firstStart) await marker.remove();
    if (!report.slotCreated && report.publicationAdded.length > 0 && !this.options.fullResync) {
      // The stream carries their changes from now on; rows that already exist are only read by a resync.
      log.warn(
        { tables: report.publicationAdded },
        'tables newly mapped: their changes stream from now on, but existing rows are not loaded; run verbose-sync --full-resync once',
      );
    }
    // A checkpoint of a slot that was created anew says nothing about the new slot's positions.
    const start: Lsn = report.slotCreated ? 0n : (saved ?? 0n);

    const stage = buildDeliveryStage({
      config,
      start,
      log,
      metrics: this.metrics,
      now: this.now,
      sleep: this.sleep,
      onFatal: (error) => this.fail(error),
      collapseRepeatedRejects: true,
      dryRun: this.options.dryRun
        ? (target, contacts) => this.options.printRequest?.({ target, contacts })
        : undefined,
      client,
      observe: (wire) => this.observed(wire),
    });
    const { coalescer, checkpoint, rejects, delivery } = stage;
    this.metrics.checkpointAgeFrom(() => checkpoint.ageSeconds());
    this.coalescer = coalescer;
    this.checkpoint = checkpoint;
    this.delivery = delivery;

    const pool = new pg.Pool({
      connectionString: config.source.url,
      max: 2,
      options: SESSION_OPTIONS,
      application_name: 'verbose-sync resync',
    });
    pool.on('error', (error) =>
      log.warn({ err: error.message }, 'resync connection lost; it reconnects on next use'),
    );
    // The pool listens for errors only on idle connections: one checked out (a resync read's snapshot) that the
    // server terminates, on a restart say, would throw an unhandled 'error' event and end the process. Its
    // query fails instead, and the resync resumes from its last delivered chunk.
    pool.on('connect', (client) =>
      client.on('error', (error) => log.debug({ err: error.message }, 'resync connection lost')),
    );
    this.resources.push({ name: 'resync pool', close: () => pool.end() });
    const backfill = new Backfill({
      sql: pool,
      tables: this.mapper.tables().map((table) => ({
        table,
        keyColumns: report.keyColumns.get(table),
        columns: this.mapper.columnsOf(table),
      })),
      chunkSize: config.resync.chunk_size,
      progress: new ProgressStore(config.state_dir),
      log: log.child({ component: 'resync' }),
      metrics: this.metrics,
      ...(process.stdout.isTTY ? { progressBar: process.stderr } : {}),
      progressIntervalMs: this.options.resyncProgressIntervalMs,
      dryRun: this.options.dryRun,
      onError: (error) => this.resyncFailed(error),
    });
    this.backfill = backfill;

    checkpoint.onAdvance((lsn) => {
      store.save(lsn);
      void backfill.delivered(lsn);
    });

    const stream = new ChangeStream({
      url: config.source.url,
      slot: config.source.slot,
      publication: config.source.publication,
      statusIntervalMs: config.source.status_interval_ms,
      heartbeatIntervalMs: config.source.heartbeat_interval_ms,
      handler: new ChangeRouter({
        mapper: this.mapper,
        coalescer,
        checkpoint,
        rejects,
        backfill,
        metrics: this.metrics,
        log,
        halted: () => this.halted,
        onFatal: (error) => this.fail(error),
      }),
      acknowledged: () => checkpoint.acknowledged,
      keyColumns: report.keyColumns,
      log,
      metrics: this.metrics,
    });
    this.stream = stream;
    stream.done.catch((error: unknown) => this.fail(error));

    delivery.start();
    await stream.start();
    this.continueStarting();
    this.started = true;
    const where = {
      slot: config.source.slot,
      publication: config.source.publication,
      tables: this.mapper.tables(),
      from: start.toString(16),
    };
    const plan = { backfill, firstStart, interruptedFirstStart, marker, slotCreated: report.slotCreated };
    if (stream.standingBy) {
      // A resync's watermarks would be read by the process that holds the slot, and this one would wait for
      // them forever: it begins only once this process streams.
      log.info(
        where,
        'standing by: another process streams from the slot; any resync begins after the takeover',
      );
      void stream.streamingBegan
        .then(() => (this.halted ? undefined : this.resyncAtStart(plan)))
        .catch((error: unknown) => this.fail(asError(error)));
    } else {
      log.info(
        where,
        this.options.dryRun
          ? 'streaming (dry run: requests are printed, nothing is sent or acknowledged)'
          : 'streaming',
      );
      await this.resyncAtStart(plan);
    }
    this.continueStarting();
    if (config.resync.schedule) {
      const schedule = new ResyncSchedule({
        expression: config.resync.schedule,
        startResync: async () => {
          if (stream.standingBy) log.info('the scheduled full resync is left to the process that streams');
          else await backfill.start('scheduled');
        },
        isRunning: () => backfill.running,
        log: log.child({ component: 'resync' }),
      });
      schedule.start();
      this.resources.push({ name: 'resync schedule', close: () => schedule.stop() });
    }
  }

  /**
   * Stops reading, lets requests in flight finish within `shutdown_timeout_ms`, persists and acknowledges
   * what was delivered, and closes every connection. Safe to call twice or concurrently.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopAfterStart().then(
      () => this.resolveDone(),
      (error: unknown) => this.rejectDone(asError(error)),
    );
    return this.stopping;
  }

  /**
   * Liveness: not wedged — contacts have waited 5 minutes without any request to Verbose ending (even failing)
   * meanwhile. Counted from the later of the two, so the first change after a quiet hour is not "wedged".
   */
  health(): ProbeResult {
    const pending = this.coalescer?.size ?? 0;
    const waitingSince = this.coalescer?.waitingSince;
    const lastAt = this.lastApiOutcome?.at ?? Number.NEGATIVE_INFINITY;
    const wedged =
      waitingSince !== undefined && this.now() - Math.max(waitingSince, lastAt) > WEDGED_AFTER_MS;
    return {
      ok: !wedged,
      detail: {
        pending,
        ...(wedged ? { reason: 'contacts wait but no request has ended for 5 minutes' } : {}),
      },
    };
  }

  /** Readiness: the stream is connected and the last word from Verbose was not a failure to reach it. */
  readiness(): ProbeResult {
    const stream = this.stream?.connected === true;
    const api = this.lastApiOutcome?.ok ?? false;
    return {
      ok: stream && api,
      detail: {
        stream: stream ? 'connected' : 'not connected',
        verbose: this.lastApiOutcome?.detail ?? 'not checked yet',
      },
    };
  }

  /** For the demo and tests: resolves when nothing waits for delivery. */
  async idle(): Promise<void> {
    await this.delivery?.idle();
  }

  get acknowledged(): Lsn | undefined {
    return this.checkpoint?.acknowledged;
  }

  get resyncRunning(): boolean {
    return this.backfill?.running ?? false;
  }

  /** Wraps the client so readiness and liveness know the last time Verbose answered, and how. */
  private observed(client: VerboseClient): ContactSender {
    return {
      upsert: async (...args: Parameters<ContactSender['upsert']>) => {
        const outcome = await client.upsert(...args);
        this.lastApiOutcome = {
          ok: outcome.kind !== 'transient',
          at: this.now(),
          detail: outcome.kind === 'transient' ? `unreachable (${String(outcome.status)})` : 'reachable',
        };
        return outcome;
      },
    };
  }

  private async checkApiKey(client: VerboseClient): Promise<void> {
    const me = await client.me();
    if (me.kind === 'unauthorized') {
      throw new DeliveryFatalError(
        `Verbose refused the API key (HTTP ${me.status}): check verbose.api_key (a revoked or mistyped key); nothing was sent`,
      );
    }
    // A redirect or a missing route does not heal by retrying: verbose.url is not the API's base URL.
    if (me.kind === 'transient' && isWrongUrlStatus(me.status)) {
      throw new DeliveryFatalError(
        `verbose.url ${this.config.verbose.url} does not lead to the Verbose API: GET /api/public/me got ${me.detail}. ` +
          'Set verbose.url to the base URL of the API (e.g. https://astrasend-mocha.vercel.app); nothing was sent',
      );
    }
    this.lastApiOutcome = {
      ok: me.kind === 'ok',
      at: this.now(),
      detail: me.kind === 'ok' ? 'reachable' : 'unreachable',
    };
    if (me.kind === 'ok') this.log.info({ workspace: me.workspace.name }, 'Verbose API key accepted');
    else this.log.warn({ detail: me.detail }, 'Verbose is not reachable now; changes wait and are retried');
  }

  /** The resync a start owes, if any; a failure to begin it only delays it, unless state_dir is damaged. */
  private async resyncAtStart(plan: Parameters<Daemon['beginResync']>[0]): Promise<void> {
    try {
      await this.beginResync(plan);
    } catch (error) {
      if (stateFileProblem(error)) throw error;
      this.resyncFailed(asError(error), () => this.beginResync(plan));
    }
  }

  /** Resumes the recorded full resync, or begins the one this start calls for. */
  private async beginResync(plan: {
    backfill: Backfill;
    firstStart: boolean;
    interruptedFirstStart: boolean;
    marker: FirstStartMarker;
    slotCreated: boolean;
  }): Promise<void> {
    const { backfill, firstStart, interruptedFirstStart, marker, slotCreated } = plan;
    // An unfinished resync's progress belongs to the old slot's history: with a new slot, every row again.
    if (!slotCreated && (await backfill.resume())) {
      this.log.info('continuing the unfinished full resync from its last delivered chunk');
    } else if (this.options.fullResync || firstStart || slotCreated) {
      if (interruptedFirstStart)
        this.log.info(
          'the first start stopped before it began loading the existing rows: every existing row is loaded now (a full resync)',
        );
      else if (firstStart)
        this.log.info(
          'first start: no slot and no state yet, so every existing row is loaded now (a full resync)',
        );
      await backfill.start(this.options.fullResync ? 'requested' : 'first start');
    }
    // Only now that the resync is recorded in resync.json (see FirstStartMarker). A dry run records nothing,
    // so the real run that follows still owes the first load.
    if (firstStart && !this.options.dryRun) await marker.remove();
  }

  private resyncFailed(
    error: Error,
    retry: () => Promise<unknown> = async () => this.backfill?.resume(),
  ): void {
    if (this.halted) return;
    // While the database is down this repeats every few seconds: rolled up into a line a minute.
    this.resyncFailures ??= new RepeatedFailure({
      log: this.log,
      now: this.now,
      firstMessage: `full resync interrupted; resuming from its last delivered chunk in ${RESYNC_RETRY_MS / 1000} s`,
      ongoingMessage: 'full resync still interrupted; retrying from its last delivered chunk',
    });
    this.resyncFailures.failed({ err: error.message });
    this.sleep(RESYNC_RETRY_MS)
      .then(
        async () => {
          if (!this.halted && !this.backfill?.running) await retry();
        },
        () => {},
      )
      // Still unreachable: try again later; a state file that cannot be read or written is fatal.
      .catch((retryError: unknown) =>
        stateFileProblem(retryError) ? this.fail(retryError) : this.resyncFailed(asError(retryError), retry),
      );
  }

  private fail(error: unknown): void {
    if (this.stopping) return;
    const fatal = asError(error);
    this.log.error({ err: fatal.message, kind: fatal.name }, 'fatal: stopping');
    this.stopping = this.shutdown().then(
      () => this.rejectDone(fatal),
      () => this.rejectDone(fatal),
    );
  }

  /** A stop during start-up lets start() reach its next step (ending a wait for the server first), then shuts down. */
  private async stopAfterStart(): Promise<void> {
    this.halted = true;
    if (this.starting) {
      // Before streaming began, start() may be waiting for the server: stopping the stream ends that wait.
      const stream = this.started ? undefined : this.stream?.stop();
      await this.starting.catch(() => {});
      await stream;
    }
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    this.halted = true;
    try {
      await this.delivery?.stop({ deadlineMs: this.config.shutdown_timeout_ms });
      this.checkpoint?.refresh();
      await this.store?.flush();
    } finally {
      // Even when the last checkpoint could not be written (a full disk), every connection is closed.
      await this.stream?.stop();
      await this.backfill?.stop();
      for (const resource of this.resources.reverse()) {
        await resource
          .close()
          .catch((error: unknown) =>
            this.log.warn({ err: asError(error).message }, `closing the ${resource.name} failed`),
          );
      }
    }
    this.log.info({ acknowledged: this.checkpoint?.acknowledged.toString(16) }, 'stopped');
  }
}

/** Answers to GET /me that say the URL is wrong (a redirect, no such route), not that the API is down. */
function isWrongUrlStatus(status: number | string): boolean {
  return typeof status === 'number' && ((status >= 300 && status < 400) || status === 404 || status === 405);
}

/** A state file that is damaged or cannot be written: no retry cures it, the operator must act. */
function stateFileProblem(error: unknown): boolean {
  return error instanceof StateFileError || error instanceof ResyncProgressError;
}

/** `stop()` was called while `start()` ran: not a failure, the daemon simply did not finish starting. */
export class StartInterrupted extends Error {
  override name = 'StartInterrupted';
  constructor() {
    super('stopped while starting');
  }
}
