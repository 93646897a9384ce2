import { onTestFinished } from 'vitest';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/simulator/simulator.js';

export const KEY = 'as_test_key';

export interface Reply {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text when the answer is not JSON. */
  body: unknown;
}

export interface CallOptions {
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is. */
  text?: string;
  /** The bearer key; null sends no Authorization header. Default: the simulator's default key. */
  key?: string | null;
}

export async function call(
  sim: Simulator,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const body = options.text ?? (options.json === undefined ? undefined : JSON.stringify(options.json));
  const response = await fetch(`${sim.url}${path}`, { method, headers, body });
  const text = await response.text();
  const isJson = response.headers.get('content-type')?.startsWith('application/json') ?? false;
  return { status: response.status, headers: response.headers, body: isJson ? JSON.parse(text) : text };
}

export const postContacts = (sim: Simulator, json: unknown, key?: string | null): Promise<Reply> =>
  call(sim, 'POST', '/api/public/contacts', { json, key });

/** Starts a simulator that is closed after the current test. */
export async function simulator(options?: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator(options);
  onTestFinished(() => sim.close());
  return sim;
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.parse('2025-01-01T00:00:00Z')): {
  now: () => number;
  advance(ms: number): void;
} {
  let time = start;
  return {
    now: () => time,
    advance(ms) {
      time += ms;
    },
  };
}

/** A random source that answers the given numbers in turn. */
export function sequence(...numbers: number[]): () => number {
  let next = 0;
  return () => {
    const value = numbers[next % numbers.length];
    next += 1;
    if (value === undefined) throw new Error('sequence() needs at least one number');
    return value;
  };
}
