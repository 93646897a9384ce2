import type { Sleep } from './clock.js';

/**
 * An edge-triggered signal: `next()` resolves at the following `notify()`. Many waiters share one promise, so a
 * burst of notifications (one per added change) costs one resolution, not one per waiter per change.
 */
export class Wakeup {
  private waiting: { promise: Promise<void>; resolve: () => void } | undefined;

  next(): Promise<void> {
    if (!this.waiting) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.waiting = { promise, resolve };
    }
    return this.waiting.promise;
  }

  notify(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve();
  }
}

/** A sleep until `at` that can be kept while it is still early enough, and cancelled. */
export class Alarm {
  readonly rung: Promise<void>;
  pending = true;
  private readonly timer = new AbortController();

  constructor(
    sleep: Sleep,
    now: number,
    readonly at: number,
  ) {
    this.rung = sleep(Math.max(0, at - now), this.timer.signal).then(() => {
      this.pending = false;
    });
  }

  /** Still to ring, and no later than `deadline`. */
  ringsBy(deadline: number): boolean {
    return this.pending && this.at <= deadline;
  }

  cancel(): void {
    // A plain reason: abort() without one builds a DOMException and its stack trace.
    if (this.pending) this.timer.abort('cancelled');
  }
}
