import type { FaultChanges } from '../../simulator/faults.js';
import { type Simulator, startSimulator } from '../../simulator/simulator.js';

/**
 * A Verbose simulator (in the bench process) that notes when contacts are accepted. The simulator keeps no
 * per-contact time, so its store's `upsert` is wrapped: it runs for every request answered 200, right before
 * the answer is written, which makes its time the acceptance time.
 */
export class AcceptingSimulator {
  /** Commit-to-accepted latencies (ms), when the writer put its commit time in `first_name`. */
  readonly latenciesMs: number[] = [];
  firstAcceptedAt: number | undefined;
  lastAcceptedAt: number | undefined;
  private contactsAccepted = 0;
  private readonly latencyPhones = new Set<string>();
  private waiters: { phones: number; resolve: (at: number) => void }[] = [];

  private constructor(
    readonly simulator: Simulator,
    private readonly latencyFromFirstName: boolean,
  ) {
    const { store } = simulator;
    const upsert = store.upsert.bind(store);
    store.upsert = (contacts, listId) => {
      const outcome = upsert(contacts, listId);
      const at = Date.now();
      this.firstAcceptedAt ??= at;
      this.lastAcceptedAt = at;
      this.contactsAccepted += contacts.length;
      if (this.latencyFromFirstName) {
        for (const contact of contacts) {
          const committedAt = Number(contact.first_name);
          // Only a phone's first acceptance counts: a resend after a lost answer is not a new delivery.
          if (Number.isFinite(committedAt) && !this.latencyPhones.has(contact.phone)) {
            this.latencyPhones.add(contact.phone);
            this.latenciesMs.push(at - committedAt);
          }
        }
      }
      if (this.waiters.length > 0) this.wake(at);
      return outcome;
    };
  }

  static async start(
    options: { faults?: FaultChanges; latencyFromFirstName?: boolean } = {},
  ): Promise<AcceptingSimulator> {
    const simulator = await startSimulator({ faults: options.faults ?? {}, requestLogLimit: 100_000 });
    return new AcceptingSimulator(simulator, options.latencyFromFirstName ?? false);
  }

  get url(): string {
    return this.simulator.url;
  }

  /** Distinct phones the simulator holds. */
  get phones(): number {
    return this.simulator.store.size;
  }

  /** Contacts in requests answered 200, repeats included. */
  get accepted(): number {
    return this.contactsAccepted;
  }

  /** Resolves with the acceptance time at which the store first held `phones` distinct phones. */
  whenPhones(phones: number): Promise<number> {
    if (this.phones >= phones) return Promise.resolve(this.lastAcceptedAt ?? Date.now());
    return new Promise((resolve) => this.waiters.push({ phones, resolve }));
  }

  close(): Promise<void> {
    return this.simulator.close();
  }

  private wake(at: number): void {
    const size = this.phones;
    const ready = this.waiters.filter((waiter) => size >= waiter.phones);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => size < waiter.phones);
    for (const waiter of ready) waiter.resolve(at);
  }
}
