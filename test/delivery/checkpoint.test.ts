import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/delivery/checkpoint.js';
import { type CoalescedContact, Coalescer } from '../../src/delivery/coalescer.js';
import { type Lsn, targetKey } from '../../src/domain.js';
import { change, LIST_A, LIST_B } from './fixtures.js';

function pipeline(start: Lsn = 0n) {
  const coalescer = new Coalescer({ maxPending: 10_000, now: () => 0 });
  const checkpoint = new Checkpoint({ coalescer, start, now: () => 0 });
  return { coalescer, checkpoint };
}

describe('Checkpoint', () => {
  it('acknowledges the last commit when everything is delivered, and stops at an undelivered one', () => {
    const { coalescer, checkpoint } = pipeline(100n);
    expect(checkpoint.acknowledged).toBe(100n);
    coalescer.add(change('+1', {}, 110n));
    expect(checkpoint.committed(110n)).toBe(100n);
    coalescer.add(change('+2', {}, 120n));
    checkpoint.committed(120n);
    checkpoint.committed(130n); // a heartbeat
    const first = coalescer.take(targetKey(LIST_A), 1);
    coalescer.complete(first);
    expect(checkpoint.refresh()).toBe(110n);
    coalescer.complete(coalescer.take(targetKey(LIST_A), 1));
    expect(checkpoint.refresh()).toBe(130n);
  });

  it('never passes a transaction whose changes are added but not yet committed', () => {
    const { coalescer, checkpoint } = pipeline();
    coalescer.add(change('+1', {}, 10n));
    checkpoint.committed(10n);
    coalescer.complete(coalescer.take(targetKey(LIST_A), 10));
    expect(checkpoint.refresh()).toBe(10n);
    coalescer.add(change('+2', {}, 20n)); // transaction 20 is still being received
    coalescer.complete(coalescer.take(targetKey(LIST_A), 10));
    expect(checkpoint.refresh()).toBe(10n);
    checkpoint.committed(20n);
    expect(checkpoint.acknowledged).toBe(20n);
  });

  it('holds still once held, and tells listeners of each advance', () => {
    const { coalescer, checkpoint } = pipeline();
    const heard: Lsn[] = [];
    checkpoint.onAdvance((lsn) => heard.push(lsn));
    checkpoint.committed(5n);
    checkpoint.hold();
    checkpoint.committed(6n);
    coalescer.add(change('+1', {}, 7n));
    expect(checkpoint.acknowledged).toBe(5n);
    expect(heard).toEqual([5n]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Property: random transactions (some left open for a while, some replayed after a "reconnect"), takes and
// completions in any order. The acknowledged LSN never passes the commit of an undelivered change, never moves
// back, and reaches the last commit once everything is delivered.

type Command =
  | { kind: 'change'; phone: number; list: number }
  | { kind: 'commit' }
  | { kind: 'take'; list: number; max: number }
  | { kind: 'complete'; batch: number }
  | { kind: 'replay'; transaction: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('change' as const), phone: fc.nat(5), list: fc.nat(1) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('take' as const),
      list: fc.nat(1),
      max: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('complete' as const), batch: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), transaction: fc.nat(20) }) },
);

interface TrackedChange {
  key: string;
  lsn: Lsn;
  addedAt: number;
  delivered: boolean;
}

describe('Checkpoint (property)', () => {
  it('never acknowledges past an undelivered change and catches up when all is delivered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.array(commandArb, { maxLength: 100 }),
        (start, commands) => {
          const { coalescer, checkpoint } = pipeline(BigInt(start));
          const lists = [LIST_A, LIST_B];
          const changes: TrackedChange[] = [];
          const committedTransactions: { lsn: Lsn; changes: { phone: string; list: number }[] }[] = [];
          let open: { phone: string; list: number }[] = [];
          let lsn = BigInt(start);
          let step = 0;
          let inFlight: { batch: CoalescedContact[]; takenAt: number }[] = [];
          let previous = checkpoint.acknowledged;

          const check = (): void => {
            const acknowledged = checkpoint.refresh();
            expect(acknowledged).toBeGreaterThanOrEqual(previous);
            previous = acknowledged;
            for (const tracked of changes)
              if (!tracked.delivered) expect(acknowledged).toBeLessThan(tracked.lsn);
          };
          const complete = ({ batch, takenAt }: { batch: CoalescedContact[]; takenAt: number }): void => {
            // An entry taken at `takenAt` carries every change to its key added before then that is not delivered.
            const keys = new Set(batch.map((e) => `${e.targetKey}|${e.phone}`));
            for (const tracked of changes)
              if (keys.has(tracked.key) && tracked.addedAt < takenAt) tracked.delivered = true;
            coalescer.complete(batch);
          };
          const take = (list: number, max: number): void => {
            const batch = coalescer.take(targetKey(lists[list]!), max);
            if (batch.length > 0) inFlight.push({ batch, takenAt: step });
          };

          for (const command of commands) {
            step += 1;
            switch (command.kind) {
              case 'change': {
                const next = lsn + 10n;
                const phone = `+${command.phone}`;
                coalescer.add(change(phone, {}, next, { target: lists[command.list] }));
                changes.push({
                  key: `${targetKey(lists[command.list]!)}|${phone}`,
                  lsn: next,
                  addedAt: step,
                  delivered: false,
                });
                open.push({ phone, list: command.list });
                break;
              }
              case 'commit':
                lsn += 10n;
                committedTransactions.push({ lsn, changes: open });
                open = [];
                checkpoint.committed(lsn);
                break;
              case 'take':
                take(command.list, command.max);
                break;
              case 'complete':
                if (inFlight.length > 0) complete(inFlight.splice(command.batch % inFlight.length, 1)[0]!);
                break;
              case 'replay': {
                const replayed = committedTransactions[command.transaction];
                for (const c of replayed?.changes ?? []) {
                  expect(coalescer.add(change(c.phone, {}, replayed!.lsn, { target: lists[c.list] }))).toBe(
                    'replayed',
                  );
                }
                break;
              }
            }
            check();
          }
          // Commit what is open, then deliver everything.
          lsn += 10n;
          checkpoint.committed(lsn);
          for (let rounds = 0; coalescer.size > 0; rounds++) {
            expect(rounds).toBeLessThan(1000);
            step += 1;
            for (const flying of inFlight) complete(flying);
            inFlight = [];
            step += 1;
            for (const list of [0, 1]) take(list, 100);
            check();
          }
          expect(checkpoint.refresh()).toBe(lsn);
        },
      ),
      { numRuns: 500 },
    );
  });
});
