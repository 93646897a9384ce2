import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CoalescedContact, Coalescer, CoalescerFullError } from '../../src/delivery/coalescer.js';
import { type ContactFields, type ListTarget, targetKey } from '../../src/domain.js';
import { change, LIST_A, LIST_B } from './fixtures.js';

const KEY_A = targetKey(LIST_A);
const KEY_B = targetKey(LIST_B);

function coalescer(maxPending = 1000, now = () => 0): Coalescer {
  return new Coalescer({ maxPending, now });
}

describe('Coalescer', () => {
  it('merges a burst of changes to one phone field by field, in commit order', () => {
    const c = coalescer();
    c.add(change('+1', { first_name: 'Ann', last_name: 'Lee' }, 1n));
    c.add(change('+1', { first_name: 'Anna' }, 2n));
    c.add(change('+1', { source: 'crm' }, 3n));
    expect(c.size).toBe(1);
    const [entry] = c.take(KEY_A, 10);
    expect(entry?.fields).toEqual({ first_name: 'Anna', last_name: 'Lee', source: 'crm' });
    expect(entry?.lastLsn).toBe(3n);
  });

  it('keeps a phone out of a second request while it is in flight, and sends the newer state after', () => {
    const c = coalescer();
    c.add(change('+1', { first_name: 'Old' }, 1n));
    const first = c.take(KEY_A, 10);
    c.add(change('+1', { first_name: 'New' }, 2n));
    c.add(change('+1', { last_name: 'Newer' }, 3n));
    expect(c.size).toBe(2);
    expect(c.take(KEY_A, 10)).toEqual([]);
    c.complete(first);
    const [second] = c.take(KEY_A, 10);
    expect(second?.fields).toEqual({ first_name: 'New', last_name: 'Newer' });
  });

  it('stays O(1) per hot phone whatever the number of changes', () => {
    const c = coalescer();
    c.add(change('+1', { first_name: 'x0' }, 1n));
    c.take(KEY_A, 1);
    for (let i = 2; i < 100_000; i++) c.add(change('+1', { first_name: `x${i}` }, BigInt(i)));
    expect(c.size).toBe(2);
  });

  it('orders one phone across lists: the newer list entry waits for the older one', () => {
    const c = coalescer();
    c.add(change('+1', { first_name: 'InA' }, 1n, { target: LIST_A }));
    c.add(change('+1', { first_name: 'InB' }, 2n, { target: LIST_B }));
    expect(c.take(KEY_B, 10)).toEqual([]);
    const a = c.take(KEY_A, 10);
    expect(a.map((e) => e.fields.first_name)).toEqual(['InA']);
    c.complete(a);
    expect(c.take(KEY_B, 10).map((e) => e.fields.first_name)).toEqual(['InB']);
  });

  it('puts live entries first and promotes a backfill entry that merges a live change', () => {
    let now = 0;
    const c = coalescer(1000, () => now);
    c.add(change('+1', {}, 1n, { backfill: true }));
    c.add(change('+2', {}, 2n, { backfill: true }));
    now = 10;
    c.add(change('+3', {}, 3n));
    c.add(change('+2', { first_name: 'Live' }, 4n));
    expect(c.backlogs()).toEqual([
      { target: LIST_A, targetKey: KEY_A, live: 2, backfill: 1, oldestSince: 0, lastMergeAt: 10 },
    ]);
    const taken = c.take(KEY_A, 2);
    expect(taken.map((e) => [e.phone, e.live])).toEqual([
      ['+3', true],
      ['+2', true],
    ]);
  });

  it('refuses a new entry when full, merges into existing ones, and wakes whenRoom() once there is room', async () => {
    const c = coalescer(2);
    c.add(change('+1', {}, 1n));
    c.add(change('+2', {}, 2n));
    expect(c.full).toBe(true);
    expect(() => c.add(change('+3', {}, 3n))).toThrow(CoalescerFullError);
    expect(c.add(change('+1', { first_name: 'merged' }, 4n))).toBe('merged');
    let roomy = false;
    const room = c.whenRoom().then(() => {
      roomy = true;
    });
    await Promise.resolve();
    expect(roomy).toBe(false);
    c.complete(c.take(KEY_A, 1));
    await room;
    expect(roomy).toBe(true);
    expect(c.add(change('+3', {}, 5n))).toBe('created');
  });

  it('gives each entry the last closed commit as its floor and ignores replays of closed transactions', () => {
    const c = coalescer();
    c.closeThrough(10n);
    expect(c.add(change('+1', {}, 9n))).toBe('replayed');
    expect(c.add(change('+1', {}, 11n))).toBe('created');
    c.closeThrough(11n);
    c.add(change('+2', {}, 12n));
    expect(c.take(KEY_A, 10).map((e) => [e.phone, e.floor])).toEqual([
      ['+1', 10n],
      ['+2', 11n],
    ]);
  });

  it('refuses to complete what is not in flight', () => {
    const c = coalescer();
    c.add(change('+1', {}, 1n));
    const [entry] = c.take(KEY_A, 1);
    c.complete([entry!]);
    expect(() => c.complete([entry!])).toThrow(/not in flight/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Property: for any interleaving of adds, takes and completions, what reaches Verbose (batches applied in the
// order they complete, field by field) equals the merge of every change in commit order, per phone; a phone
// is never in two batches in flight; a phone's older state is never applied after a newer one.

const PHONES = ['+10', '+11', '+12', '+13'];
const TARGETS: ListTarget[] = [LIST_A, LIST_B, {}];
const fieldsArb = fc.record(
  {
    first_name: fc.constantFrom('a', 'b', 'c'),
    last_name: fc.constantFrom('x', 'y'),
    source: fc.constantFrom('s'),
  },
  { requiredKeys: [] },
);

type Command =
  | { kind: 'add'; phone: string; target: number; fields: ContactFields; backfill: boolean }
  | { kind: 'take'; target: number; max: number }
  | { kind: 'complete'; batch: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      phone: fc.constantFrom(...PHONES),
      target: fc.nat(TARGETS.length - 1),
      fields: fieldsArb,
      backfill: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('take' as const),
      target: fc.nat(2),
      max: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('complete' as const), batch: fc.nat(5) }) },
);

describe('Coalescer (property)', () => {
  it('delivers the last state per phone, in order, never one phone in two requests', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 80 }), (commands) => {
        const c = coalescer();
        const expected = new Map<string, { fields: ContactFields; targets: Set<string> }>();
        const verbose = new Map<string, { fields: ContactFields; targets: Set<string> }>();
        const appliedLsn = new Map<string, bigint>();
        let inFlight: CoalescedContact[][] = [];
        let lsn = 0n;

        const apply = (batch: CoalescedContact[]): void => {
          for (const contact of batch) {
            const previous = appliedLsn.get(contact.phone) ?? -1n;
            expect(contact.lastLsn).toBeGreaterThan(previous);
            appliedLsn.set(contact.phone, contact.lastLsn);
            const stored = verbose.get(contact.phone) ?? { fields: {}, targets: new Set<string>() };
            stored.fields = { ...stored.fields, ...contact.fields };
            stored.targets.add(contact.targetKey);
            verbose.set(contact.phone, stored);
          }
          c.complete(batch);
        };
        const take = (key: string, max: number): void => {
          const batch = c.take(key, max);
          if (batch.length === 0) return;
          const flying = new Set(inFlight.flat().map((e) => e.phone));
          for (const contact of batch) expect(flying.has(contact.phone)).toBe(false);
          expect(new Set(batch.map((e) => e.phone)).size).toBe(batch.length);
          inFlight.push(batch);
        };

        for (const command of commands) {
          if (command.kind === 'add') {
            lsn += 1n;
            const target = TARGETS[command.target]!;
            c.add(change(command.phone, command.fields, lsn, { target, backfill: command.backfill }));
            const want = expected.get(command.phone) ?? { fields: {}, targets: new Set<string>() };
            want.fields = { ...want.fields, ...command.fields };
            want.targets.add(targetKey(target));
            expected.set(command.phone, want);
          } else if (command.kind === 'take') {
            take(targetKey(TARGETS[command.target]!), command.max);
          } else if (inFlight.length > 0) {
            const index = command.batch % inFlight.length;
            const [batch] = inFlight.splice(index, 1);
            apply(batch!);
          }
        }
        // Drain: complete what flies, then take and complete until nothing is left.
        for (let rounds = 0; c.size > 0; rounds++) {
          expect(rounds).toBeLessThan(1000);
          for (const batch of inFlight) apply(batch);
          inFlight = [];
          for (const backlog of c.backlogs()) take(backlog.targetKey, 100);
        }
        expect(verbose).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
