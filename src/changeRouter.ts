import type { Checkpoint } from './delivery/checkpoint.js';
import type { Coalescer } from './delivery/coalescer.js';
import type { RejectSink } from './delivery/rejectLog.js';
import type { ContactChange, Lsn, RowChange } from './domain.js';
import { asError } from './errors.js';
import type { Logger } from './log.js';
import { PhoneCollisions } from './mapping/collisions.js';
import type { Mapper, MappingOutcome } from './mapping/mapper.js';
import type { Metrics } from './ops/metrics.js';
import type { Backfill } from './resync/backfill.js';
import type { ChangeHandler, LogicalMessage } from './source/changeStream.js';

export interface ChangeRouterOptions {
  mapper: Mapper;
  coalescer: Coalescer;
  checkpoint: Checkpoint;
  rejects: RejectSink;
  backfill: Pick<Backfill, 'observe' | 'onMessage'>;
  metrics: Metrics;
  log: Logger;
  /** True once the daemon is stopping: from then on calls wait forever, so nothing more counts as received. */
  halted: () => boolean;
  /** A change could not be handled: the daemon stops (the stream must never skip it). */
  onFatal: (error: Error) => void;
}

/**
 * The stream's handler: maps each change and routes what it becomes. Contacts go to the coalescer (waiting for
 * room when it is full, which pauses the stream), rows that cannot be contacts to rejects.jsonl, the rest to
 * metrics; commits close positions for the checkpoint, and resync watermarks hand over their chunks.
 */
export class ChangeRouter implements ChangeHandler {
  private readonly collisions: PhoneCollisions;

  readonly change = this.guarded('change', (change: RowChange) => this.onChange(change));
  readonly commit = this.guarded('commit', (lsn: Lsn) => {
    this.options.checkpoint.committed(lsn);
  });
  readonly message = this.guarded('message', (message: LogicalMessage) => this.onMessage(message));

  constructor(private readonly options: ChangeRouterOptions) {
    this.collisions = new PhoneCollisions(options.coalescer.capacity);
  }

  // The partial transaction comes again in full; what was merged of it is the same data, and the checkpoint
  // cannot pass its commit before then, so there is nothing to undo.
  rollback(): void {}

  private guarded<A extends unknown[]>(name: string, body: (...args: A) => Promise<void> | void) {
    return async (...args: A): Promise<void> => {
      if (this.options.halted()) return never();
      try {
        await body(...args);
      } catch (error) {
        this.options.onFatal(new Error(`while handling a ${name}: ${asError(error).message}`));
        return never();
      }
    };
  }

  private async onChange(change: RowChange): Promise<void> {
    this.options.backfill.observe(change);
    // A transaction the server sends again after a reconnect was merged already (and maybe delivered).
    if (change.commitLsn <= this.options.checkpoint.lastCommitted) return;
    await this.route(this.options.mapper.map(change), change.table);
  }

  private async onMessage(message: LogicalMessage): Promise<void> {
    // A watermark the server sends again after a reconnect: its chunk was handed over already.
    if (!message.transactional && message.lsn <= this.options.checkpoint.lastCommitted) return;
    const rows = this.options.backfill.onMessage(message);
    if (!rows) return;
    for (const row of rows) await this.route(this.options.mapper.map(row), row.table);
  }

  private async route(outcomes: MappingOutcome[], table: string): Promise<void> {
    const { metrics, log } = this.options;
    for (const outcome of outcomes) {
      if (outcome.kind === 'contact') await this.enqueue(outcome.contact);
      else if (outcome.kind === 'rejected') {
        const { rejection } = outcome;
        const about = {
          table,
          key: rejection.origin.key,
          phone: rejection.origin.rawPhone,
          reason: rejection.reason,
        };
        if (await this.options.rejects.append(rejection, 'mapping')) {
          metrics.rejects.inc({ stage: 'mapping' });
          log.warn(about, 'row not sent: it cannot become a contact (kept in rejects.jsonl)');
        } else {
          log.debug(about, 'row not sent, for the reason rejects.jsonl already gives');
        }
      } else {
        metrics.changesSkipped.inc({ table, reason: outcome.reason });
        log.debug({ table, reason: outcome.reason }, 'change not sent: Verbose has no counterpart');
      }
    }
  }

  private async enqueue(contact: ContactChange): Promise<void> {
    const { coalescer, metrics } = this.options;
    const collision = this.collisions.observe(contact);
    if (collision) {
      metrics.phoneCollisions.inc({ table: contact.origin.table });
      this.options.log.info(
        { collision },
        'two CRM rows share one phone: they are one Verbose contact, the newest change wins',
      );
    }
    if (coalescer.full) {
      metrics.streamPaused.set(1);
      await coalescer.whenRoom();
      metrics.streamPaused.set(0);
    }
    coalescer.add(contact);
  }
}

function never(): Promise<never> {
  return new Promise<never>(() => {});
}
