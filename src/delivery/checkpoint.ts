import type { Lsn } from '../domain.js';
import type { Now } from './clock.js';
import type { CoalescedContact } from './coalescer.js';

/** What the checkpoint needs of the coalescer. */
export interface UndeliveredContacts {
  oldestUndelivered(): Pick<CoalescedContact, 'floor'> | undefined;
  closeThrough(lsn: Lsn): void;
}

export interface CheckpointOptions {
  coalescer: UndeliveredContacts;
  /** Where the stream starts: the persisted checkpoint, or 0 for the slot's confirmed position. */
  start: Lsn;
  now: Now;
  metrics?: {
    acknowledgedLsn: { set(value: number): void };
  };
}

/**
 * The low-watermark (invariant 3): the newest commit LSN whose every contact was delivered (accepted, or
 * rejected with its reason recorded).
 *
 * - Nothing undelivered: the last committed LSN.
 * - Otherwise: the `floor` of the oldest undelivered entry, i.e. the last commit that was complete before that
 *   entry's first change arrived. Entries are created in commit order, so that floor is the smallest one.
 *
 * A transaction whose changes were added but whose `committed()` has not come yet cannot be passed: its
 * entries' floors are below its commit, and the last committed LSN is too.
 *
 * No "discard uncommitted" is needed after a replication reconnect (the stream's `rollback()` has nothing to
 * do here): the server only sends committed transactions, so the changes of a partially received one are real
 * data, already newer than anything else merged, and the server resends that transaction in full (same data,
 * merged again; its entries' floors still hold the checkpoint below its commit). Transactions received in full
 * before the reconnect come again with commit LSNs at or below `lastCommitted`: `committed()` ignores those
 * positions and `ChangeRouter.onChange()` skips their changes as replays (`Coalescer.add()` ignores them too,
 * for callers that feed it directly).
 */
export class Checkpoint {
  private committedLsn: Lsn;
  private acknowledgedLsn: Lsn;
  private held = false;
  private movedAt: number;
  private readonly listeners = new Set<(lsn: Lsn) => void>();

  constructor(private readonly options: CheckpointOptions) {
    this.committedLsn = options.start;
    this.acknowledgedLsn = options.start;
    this.movedAt = options.now();
    options.coalescer.closeThrough(options.start);
    options.metrics?.acknowledgedLsn.set(Number(options.start));
  }

  /** The acknowledged position: only ever moves forward. */
  get acknowledged(): Lsn {
    return this.acknowledgedLsn;
  }

  /** The last transaction commit (or heartbeat) reported by the stream. */
  get lastCommitted(): Lsn {
    return this.committedLsn;
  }

  /**
   * A transaction committed at `lsn` (or a heartbeat was read there) and every contact it produced has been
   * added to the coalescer (or rejected by the mapping, with the reject written). Returns the acknowledged LSN.
   */
  committed(lsn: Lsn): Lsn {
    if (lsn > this.committedLsn) {
      this.committedLsn = lsn;
      this.options.coalescer.closeThrough(lsn);
    }
    return this.refresh();
  }

  /** Recomputes the acknowledged position after deliveries; listeners hear of each advance. */
  refresh(): Lsn {
    const oldest = this.options.coalescer.oldestUndelivered();
    const now = this.options.now();
    const candidate = oldest ? oldest.floor : this.committedLsn;
    if (!this.held && candidate > this.acknowledgedLsn) {
      this.acknowledgedLsn = candidate;
      this.movedAt = now;
      this.options.metrics?.acknowledgedLsn.set(Number(candidate));
      for (const listener of this.listeners) listener(candidate);
    }
    // With nothing waiting the age is 0, and it counts from the moment something starts waiting.
    // (The age gauge is read from ageSeconds() when /metrics is scraped, not set on every commit.)
    if (this.acknowledgedLsn >= this.committedLsn) this.movedAt = now;
    return this.acknowledgedLsn;
  }

  /** Seconds since the position last moved while commits were waiting behind it (0 when none are). */
  ageSeconds(): number {
    return this.acknowledgedLsn < this.committedLsn ? (this.options.now() - this.movedAt) / 1000 : 0;
  }

  /**
   * Freezes the acknowledged position for the life of the process: a dry run (nothing was really sent) or a
   * fatal delivery error (nothing further may be acknowledged).
   */
  hold(): void {
    this.held = true;
  }

  /** Calls `listener(lsn)` on every advance (persist it, acknowledge the slot); returns the unsubscribe function. */
  onAdvance(listener: (lsn: Lsn) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
