/** Milliseconds since the epoch (or any monotone origin); injected so stages can run on a virtual clock. */
export type Now = () => number;

/**
 * Waits `ms`, or less when `signal` aborts. It resolves in both cases and never rejects, so a caller can race
 * it against another event and cancel the loser without handling an abort error.
 */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A number in [0, 1), like Math.random; injected so jitter is reproducible in tests. */
export type Random = () => number;

export const systemNow: Now = () => Date.now();

export const systemSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
