import type { Sleep } from '../../src/delivery/clock.js';

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
}

/**
 * Virtual time for stages that take `now` and `sleep`. Time only moves when the test says so (`advance`) or,
 * with `runUntil`, whenever every promise chain has settled and some sleeper is waiting: then it jumps to the
 * earliest timer. No test depends on how fast the machine is.
 */
export class VirtualClock {
  private time: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  readonly now = (): number => this.time;

  readonly sleep: Sleep = (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer: Timer = {
        at: this.time + Math.max(0, ms),
        seq: this.seq++,
        fire: () => {
          signal?.removeEventListener('abort', cancel);
          resolve();
        },
      };
      const cancel = (): void => {
        this.timers = this.timers.filter((t) => t !== timer);
        resolve();
      };
      signal?.addEventListener('abort', cancel, { once: true });
      this.timers.push(timer);
    });

  /** Sleepers waiting. */
  get sleepers(): number {
    return this.timers.length;
  }

  /** Lets every promise chain that can progress without time passing do so. */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Moves time forward by `ms`, firing timers in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await this.settle();
    for (let timer = this.nextTimer(end); timer; timer = this.nextTimer(end)) {
      this.time = Math.max(this.time, timer.at);
      timer.fire();
      await this.settle();
    }
    this.time = end;
    await this.settle();
  }

  /**
   * Settles, then jumps to the next timer, until `done()` holds. Throws when nothing is left to wait for (a
   * stuck pipeline), after `limitMs` of virtual time or after `maxTimers` timers (a livelock).
   */
  async runUntil(done: () => boolean, limitMs = 24 * 3600_000, maxTimers = 20_000): Promise<void> {
    const end = this.time + limitMs;
    for (let fired = 0; ; fired++) {
      await this.settle();
      if (done()) return;
      if (fired >= maxTimers)
        throw new Error(`runUntil: condition still false after ${fired} timers (a livelock?)`);
      const timer = this.nextTimer(end);
      if (!timer)
        throw new Error(`runUntil: nothing left to wait for at +${this.time} (condition still false)`);
      this.time = Math.max(this.time, timer.at);
      timer.fire();
    }
  }

  private nextTimer(end: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.timers) {
      if (timer.at > end) continue;
      if (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) next = timer;
    }
    if (next) this.timers = this.timers.filter((t) => t !== next);
    return next;
  }
}

/** Resolves once `condition()` holds, polling in real time; for integration tests against real I/O. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`condition still false after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
