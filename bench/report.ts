/** The benchmark's table (terminal and Markdown) and bench/results.json. */
import { cpus, loadavg, totalmem, release } from 'node:os';
import { fmtMs, median } from './stats.js';
import type { Row } from './measurements.js';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  node: string;
  postgres: string;
  /** 1, 5 and 15 minute load averages when the run started and ended */
  loadAverage: { start: number[]; end: number[] };
}

export function machineInfo(postgres: string, loadAtStart: number[]): MachineInfo {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    node: process.version,
    postgres,
    loadAverage: { start: loadAtStart.map((x) => Math.round(x * 100) / 100), end: loadavg().map((x) => Math.round(x * 100) / 100) },
  };
}

const metText = (m: boolean | null) => (m === null ? '—' : m ? 'yes' : 'NO');

function cells(r: Row): string[] {
  return [
    r.measurement,
    `${r.baseline.label}: ${fmtMs(median(r.baseline.ms))}`,
    `${r.subject.label}: ${fmtMs(median(r.subject.ms))}`,
    `${r.ratio.toFixed(2)}×`,
    r.target ?? '—',
    metText(r.met),
  ];
}

const HEADER = ['measurement', 'baseline (median)', 'subject (median)', 'ratio', 'target', 'met?'];

/** A plain-text table for the terminal. */
export function textTable(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

/** The same table in Markdown, for the README. */
export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [`| ${HEADER.join(' | ')} |`, `|${HEADER.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`)].join('\n');
}
