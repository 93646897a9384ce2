import type { Scenario } from '../scenario.js';
import { raceBacklog } from '../support/backlogRace.js';

/** A backlog of single-row transactions waiting in the slot (the daemon was down), delivered end to end. */
export const catchUp: Scenario = {
  name: 'catch-up',
  title: 'Catch-up: backlog of single-row transactions',
  run(context) {
    const rows = context.quick ? 20_000 : 200_000;
    return raceBacklog(context, {
      database: 'bench_catch_up',
      rows,
      perTransaction: 1,
      describe: `${rows.toLocaleString('en')} single-row INSERT transactions`,
    });
  },
};
