import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import type { Comparison, ScenarioResult } from './scenario.js';

export interface RunInfo {
  command: string;
  startedAt: Date;
  seconds: number;
  postgresVersion: string;
  packageVersion: string;
  libraryVersion: string;
  loadBefore: number[];
  loadAfter: number[];
  quick: boolean;
}

const BEGIN = '<!-- bench:begin (written by `npm run bench`; edit outside these markers) -->';
const END = '<!-- bench:end -->';

/**
 * Writes the measured part of BENCHMARKS.md between its markers, keeping whatever was written around them
 * (the analysis), or creates the file with the measured part alone.
 */
export async function writeReport(file: string, info: RunInfo, results: ScenarioResult[]): Promise<void> {
  const measured = `${BEGIN}\n${renderReport(info, results)}\n${END}`;
  let existing: string | undefined;
  try {
    existing = await readFile(file, 'utf8');
  } catch {
    existing = undefined;
  }
  const begin = existing?.indexOf(BEGIN) ?? -1;
  const end = existing?.indexOf(END) ?? -1;
  const text =
    existing !== undefined && begin >= 0 && end > begin
      ? existing.slice(0, begin) + measured + existing.slice(end + END.length)
      : `# Benchmarks\n\n${measured}\n`;
  await writeFile(file, text);
}

export function renderReport(info: RunInfo, results: ScenarioResult[]): string {
  const cpus = os.cpus();
  const lines = [
    `Measured ${info.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${info.command}\`` +
      ` (the whole run took ${formatDuration(info.seconds)}${info.quick ? '; QUICK sizes, not the real figures' : ''}).`,
    '',
    '| | |',
    '| --- | --- |',
    `| machine | ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${os.type()} ${os.release()} |`,
    `| load average (1, 5, 15 min) | before ${formatLoad(info.loadBefore)}; after ${formatLoad(info.loadAfter)} |`,
    `| versions | Node ${process.version}, PostgreSQL ${info.postgresVersion} (embedded), verbose-sync ${info.packageVersion}, pg-logical-replication ${info.libraryVersion} |`,
    '',
    '### Targets',
    '',
    '| scenario | target | measured | met |',
    '| --- | --- | --- | --- |',
    ...results.flatMap((result) =>
      result.targets.map(
        (target) =>
          `| ${result.title} | ${target.target} | ${target.measured} | ${target.met ? 'met' : '**not met**'} |`,
      ),
    ),
    '',
    '### Measures, beside the ceiling and the naive peer',
    '',
    'Ratios are verbose-sync ÷ the peer: above 1 is better for a rate (↑), below 1 is better for a time, a',
    'count or memory (↓).',
    '',
    '| scenario | measure | verbose-sync | ceiling | naive peer | ÷ ceiling | ÷ naive |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...results.flatMap((result) =>
      result.comparisons.map(
        (row) =>
          `| ${result.title} | ${row.measure} ${row.better === 'higher' ? '↑' : '↓'} | ${formatNumber(row.verboseSync, row.digits)} | ` +
          `${formatNumber(row.ceiling, row.digits)} | ${formatNumber(row.naive, row.digits)} | ` +
          `${ratio(row.verboseSync, row.ceiling)} | ${ratio(row.verboseSync, row.naive)} |`,
      ),
    ),
    '',
    '### Peak RSS (VmHWM) of each process',
    '',
    'Live heap: the largest heap still in use right after a full (mark-compact) collection, read from the',
    "daemon's `--trace-gc` output; the rest of RSS is garbage not yet collected, the young generation, code and",
    'buffers.',
    '',
    '| scenario | process | peak RSS | live heap after a full GC, at most |',
    '| --- | --- | ---: | ---: |',
    ...results.flatMap((result) =>
      result.peakRss.map(
        (peak) =>
          `| ${result.title} | ${peak.process} | ${peak.mb.toFixed(0)} MB | ${peak.liveMb === undefined ? '' : `${peak.liveMb.toFixed(0)} MB`} |`,
      ),
    ),
    '',
    ...results.flatMap((result) => [
      `### ${result.title} (\`--scenario ${result.name}\`, ${formatDuration(result.seconds)})`,
      '',
      result.setup,
      '',
      ...(result.details.length > 0 ? [...result.details, ''] : []),
    ]),
  ];
  return lines.join('\n').trimEnd();
}

function ratio(value: number | undefined, peer: number | undefined): string {
  if (
    value === undefined ||
    peer === undefined ||
    !Number.isFinite(value) ||
    !Number.isFinite(peer) ||
    peer === 0
  ) {
    return '';
  }
  const r = value / peer;
  if (r >= 10) return `${r.toFixed(0)}×`;
  if (r >= 0.1) return `${r.toFixed(2)}×`;
  return `1/${(1 / r).toFixed(0)}`;
}

export function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return '';
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function formatLoad(load: number[]): string {
  return load.map((value) => value.toFixed(2)).join(', ');
}

function formatDuration(seconds: number): string {
  return seconds >= 90 ? `${(seconds / 60).toFixed(1)} min` : `${seconds.toFixed(0)} s`;
}

export type { Comparison };
