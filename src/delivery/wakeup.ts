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

/**
 * Calls `ring` at `at`, unless cancelled first. Kept while it is still early enough, so that a waiter woken
 * often (on every change added) does not arm a timer each time.
 */
export class Alarm {
  rang = false;
  private cancelled = false;
  private readonly timer = new AbortController();

  constructor(
    sleep: Sleep,
    now: number,
    readonly at: number,
    ring: () => void,
  ) {
    void sleep(Math.max(0, at - now), this.timer.signal).then(() => {
      if (this.cancelled) return;
      this.rang = true;
      ring();
    });
  }

  /** Still to ring, and no later than `deadline`. */
  ringsBy(deadline: number): boolean {
    return !this.rang && !this.cancelled && this.at <= deadline;
  }

  cancel(): void {
    if (this.rang || this.cancelled) return;
    this.cancelled = true;
    // A plain reason: abort() without one builds a DOMException and its stack trace.
    this.timer.abort('cancelled');
  }
}
