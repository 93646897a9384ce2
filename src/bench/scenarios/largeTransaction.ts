import type { Scenario } from '../scenario.js';
import { raceBacklog } from '../support/backlogRace.js';

/**
 * One huge transaction (a bulk import): pgoutput protocol 1 cannot stream it in progress, so it reaches every
 * consumer at once after its commit, and the checkpoint can only move when all of it is delivered.
 */
export const largeTransaction: Scenario = {
  name: 'large-transaction',
  title: 'One large transaction',
  run(context) {
    const rows = context.quick ? 100_000 : 1_000_000;
    return raceBacklog(context, {
      database: 'bench_large_transaction',
      rows,
      perTransaction: rows,
      describe: `one transaction inserting ${rows.toLocaleString('en')} rows`,
    });
  },
};
