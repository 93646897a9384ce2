import type { RejectRecord } from '../delivery/rejectLog.js';
import type { ResyncProgress } from '../resync/progressStore.js';
import type { SlotStatus, SourceStatus } from './sourceStatus.js';
import type { Readout, StateStatus } from './stateStatus.js';
import { formatBytes, formatCount, formatDuration } from './units.js';

export interface StatusReport {
  config: string;
  slot: string;
  publication: string;
  /** The database part, or why it could not be read (already scrubbed of secrets). */
  source: { status: SourceStatus } | { error: string };
  state: StateStatus;
}

/** `verbose-sync status` for people: what is wrong first in each section, with the command or doc to use. */
export function formatStatus(report: StatusReport): string {
  const lines: string[] = [`verbose-sync status (config ${report.config})`, ''];
  if ('error' in report.source) {
    lines.push(`Database: cannot connect: ${report.source.error}`);
    lines.push('  slot and lag unknown; check source.url and that the server is up');
  } else {
    const { status } = report.source;
    lines.push(
      `Database ${status.database} (PostgreSQL ${status.serverVersion}, wal_level ${status.walLevel})`,
    );
    lines.push(...slotLines(report.slot, status.slot));
    lines.push(
      status.publication
        ? `  publication ${status.publication.name}: ${status.publication.tables.join(', ') || 'no tables'}`
        : `  publication ${report.publication}: does not exist (the daemon creates it when it starts)`,
    );
  }
  lines.push('', `State in ${report.state.stateDir}`);
  lines.push(...checkpointLines(report.state.checkpoint));
  lines.push(...rejectLines(report.state.rejects));
  lines.push(...resyncLines(report.state.resync));
  return `${lines.join('\n')}\n`;
}

function slotLines(name: string, slot: SlotStatus | undefined): string[] {
  if (!slot) {
    return [
      `  slot ${name}: does not exist. The daemon creates it on its first start; if it ran before, the slot was ` +
        'dropped and changes since then are lost to it: start it with --full-resync (docs/operations.md, "slot lost")',
    ];
  }
  const who = [slot.application, slot.clientAddress].filter(Boolean).join(', ');
  const lines = [
    slot.active
      ? `  slot ${name}: active, streaming to server process ${slot.activePid}${who ? ` (${who})` : ''}`
      : `  slot ${name}: inactive (no verbose-sync is streaming from it; the server keeps WAL for it meanwhile)`,
  ];
  const walStatus = slot.walStatus ?? 'unknown';
  const warning: Record<string, string> = {
    extended: ' (beyond max_wal_size, still kept)',
    unreserved: ' (WARNING: the server may remove WAL this slot still needs at its next checkpoint)',
    lost: ' (LOST: the WAL it needed is gone; start the daemon with --full-resync)',
  };
  lines.push(`    wal_status ${walStatus}${warning[walStatus] ?? ''}`);
  if (slot.lagBytes !== null) {
    lines.push(
      `    lag ${formatBytes(slot.lagBytes)} behind the server (acknowledged ${slot.confirmedFlushLsn}, ` +
        `server at ${slot.serverLsn})`,
    );
  }
  if (slot.retainedBytes !== null)
    lines.push(`    WAL kept on the server for it: ${formatBytes(slot.retainedBytes)}`);
  return lines;
}

function checkpointLines(readout: StateStatus['checkpoint']): string[] {
  if ('problem' in readout) return [`  checkpoint: PROBLEM: ${readout.problem}`];
  const checkpoint = readout.value;
  if (!checkpoint) return ['  checkpoint: none yet (nothing delivered from this state_dir so far)'];
  return [
    `  checkpoint ${checkpoint.lsn}, written ${formatDuration(checkpoint.ageSeconds)} ago (${checkpoint.updatedAt})`,
  ];
}

function rejectLines(readout: StateStatus['rejects']): string[] {
  if ('problem' in readout) return [`  rejected contacts: PROBLEM: ${readout.problem}`];
  const rejects = readout.value;
  if (!rejects || rejects.total === 0) return ['  rejected contacts: none'];
  const lines = [
    `  rejected contacts: ${formatCount(rejects.total)} (mapping ${formatCount(rejects.byStage.mapping)}, ` +
      `api ${formatCount(rejects.byStage.api)}); \`verbose-sync rejects\` lists them all, newest:`,
  ];
  for (const record of rejects.newest) lines.push(`    ${rejectLine(record)}`);
  return lines;
}

function rejectLine(record: RejectRecord): string {
  const key = Object.entries(record.key)
    .map(([column, value]) => `${column}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${record.time} ${record.stage} ${record.table} ${key} phone ${JSON.stringify(record.phone)}: ${record.reason}`;
}

function resyncLines(readout: Readout<ResyncProgress>): string[] {
  if ('problem' in readout) return [`  full resync: PROBLEM: ${readout.problem}`];
  const progress = readout.value;
  if (!progress) return ['  full resync: none in progress'];
  const lines = [`  full resync in progress (${progress.reason}, started ${progress.startedAt}):`];
  for (const [table, figures] of Object.entries(progress.tables)) {
    lines.push(
      figures.done
        ? `    ${table}: done, ${formatCount(figures.rowsDone)} rows`
        : `    ${table}: ${formatCount(figures.rowsDone)} of ~${formatCount(figures.estimatedRows)} rows`,
    );
  }
  return lines;
}
