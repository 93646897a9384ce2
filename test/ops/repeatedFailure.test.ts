import { describe, expect, it } from 'vitest';
import { RepeatedFailure } from '../../src/ops/repeatedFailure.js';

interface Line {
  level: 'warn' | 'debug';
  msg: string;
  details: Record<string, unknown>;
}

function rig() {
  let now = 0;
  const lines: Line[] = [];
  const failure = new RepeatedFailure({
    log: {
      warn: (details, msg) => lines.push({ level: 'warn', msg, details: details as Record<string, unknown> }),
      debug: (details, msg) =>
        lines.push({ level: 'debug', msg, details: details as Record<string, unknown> }),
    },
    now: () => now,
    firstMessage: 'connection lost; reconnecting',
    ongoingMessage: 'connection still failing; reconnecting',
  });
  return {
    failure,
    lines,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('repeated failures are rolled up', () => {
  it('prints a few dozen warnings, not thousands, for a 30-minute outage retried every second', () => {
    const { failure, lines, advance } = rig();
    for (let second = 0; second < 30 * 60; second++) {
      failure.failed({ err: 'ECONNREFUSED' });
      advance(1_000);
    }
    const warnings = lines.filter((line) => line.level === 'warn');
    expect(warnings[0]).toMatchObject({
      msg: 'connection lost; reconnecting',
      details: { err: 'ECONNREFUSED' },
    });
    // The first failure, then one summary a minute.
    expect(warnings).toHaveLength(30);
    expect(warnings.at(-1)).toMatchObject({
      msg: 'connection still failing; reconnecting',
      details: { failures: 1741, failingForMs: 1_740_000, err: 'ECONNREFUSED' },
    });
    expect(failure.recovered()).toEqual({ failures: 1800, failingForMs: 1_800_000 });
  });

  it('starts a new outage after recovering, or when the last failure is long past', () => {
    const { failure, lines, advance } = rig();
    failure.failed({});
    advance(5_000);
    expect(failure.recovered()).toEqual({ failures: 1, failingForMs: 5_000 });
    expect(failure.recovered()).toBeUndefined();
    failure.failed({});
    advance(60 * 60_000);
    failure.failed({});
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      ['warn', 'connection lost; reconnecting'],
      ['warn', 'connection lost; reconnecting'],
      ['warn', 'connection lost; reconnecting'],
    ]);
  });
});
