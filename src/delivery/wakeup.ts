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
