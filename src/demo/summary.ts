import type { RejectRecord } from '../delivery/rejectLog.js';
import { formatCount } from '../ops/units.js';
import type { RequestStats } from '../simulator/simulator.js';

export interface DemoSummary {
  rows: number;
  liveChanges: number;
  contacts: number;
  list: string;
  requests: RequestStats;
  rejects: RejectRecord[];
  rejectsFile: string;
  dir: string;
}

/** The lines printed when the demo stops. */
export function formatSummary(summary: DemoSummary): string[] {
  const statuses = Object.entries(summary.requests.byStatus)
    .map(([status, count]) => `${status}: ${formatCount(count)}`)
    .join(', ');
  const lines = [
    `  CRM rows             ${formatCount(summary.rows)} in res_partner (${formatCount(summary.liveChanges)} live changes made)`,
    `  contacts in Verbose  ${formatCount(summary.contacts)} (list "${summary.list}")`,
    `  requests to Verbose  ${formatCount(summary.requests.total)}${statuses ? ` (${statuses})` : ''}`,
  ];
  if (summary.rejects.length === 0) {
    lines.push('  rejected             none');
  } else {
    lines.push(
      `  rejected             ${formatCount(summary.rejects.length)}, kept in ${summary.rejectsFile} ` +
        '(a row fixed since stays listed until `verbose-sync rejects --retry`):',
    );
    const reasons = new Map<string, number>();
    for (const record of summary.rejects) reasons.set(record.reason, (reasons.get(record.reason) ?? 0) + 1);
    for (const [reason, count] of [...reasons].sort((a, b) => b[1] - a[1])) {
      lines.push(`                       ${count} × ${reason}`);
    }
  }
  lines.push(`  logs, config, state  kept in ${summary.dir} (delete it when done)`);
  return lines;
}
