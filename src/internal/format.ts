/**
 * Text formatting shared by the CLI: Go's text/tabwriter layout, go-units'
 * HumanSize / HumanDuration (so tables read like ctr's), Go durations.
 */
import { invalidArgument } from '../errdefs/index.js';

/**
 * Lays out rows like Go's tabwriter.NewWriter(out, minwidth=1, tabwidth=8,
 * padding=1, padchar, 0): each cell is terminated by a tab; a line's last
 * cell (not tab-terminated) is not aligned. Columns are aligned over all rows.
 */
export function tabwrite(lines: string[], padchar: ' ' | '\t' = ' '): string {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const r of rows) {
    for (let i = 0; i < r.length - 1; i++) widths[i] = Math.max(widths[i] ?? 0, width(r[i]));
  }
  const out: string[] = [];
  for (const r of rows) {
    let line = '';
    for (let i = 0; i < r.length; i++) {
      const cell = r[i];
      if (i === r.length - 1) {
        line += cell;
        break;
      }
      const w = Math.max(1, widths[i] + 1);
      if (padchar === '\t') {
        const cellw = Math.ceil(w / 8) * 8;
        line += cell + '\t'.repeat(Math.max(1, Math.ceil((cellw - width(cell)) / 8)));
      } else {
        line += cell + ' '.repeat(w - width(cell));
      }
    }
    out.push(line); // like Go's tabwriter, tab-terminated last cells keep their padding
  }
  return out.join('\n') + (out.length ? '\n' : '');
}

function width(s: string): number {
  return [...s].length;
}

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** go-units HumanSize: 4 significant digits, decimal units ("1.081MB"). */
export function humanSize(n: number): string {
  return unitString(n, 1000, DECIMAL, 4);
}

/** go-units BytesSize: binary units ("1.031MiB"). */
export function bytesSize(n: number): string {
  return unitString(n, 1024, BINARY, 4);
}

function unitString(n: number, base: number, units: string[], precision: number): string {
  let i = 0;
  while (n >= base && i < units.length - 1) {
    n /= base;
    i++;
  }
  return `${goG(n, precision)}${units[i]}`;
}

/** Go's %.{p}g for the magnitudes sizes take. */
function goG(x: number, p: number): string {
  if (x === 0) return '0';
  let s = x.toPrecision(p);
  if (s.includes('e')) return String(Number(s));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

/** go-units HumanDuration ("Less than a second", "About a minute", "3 hours"…). */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(ms / 60000);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(ms / 3600000);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Parses a Go duration ("1h30m", "90s", "250ms") into milliseconds. InvalidArgument otherwise. */
export function parseDuration(s: string): number {
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  const str = s.trim();
  if (!str) throw invalidArgument(`invalid duration ${JSON.stringify(s)}`);
  if (str === '0') return 0; // as Go's time.ParseDuration: a bare 0 needs no unit
  re.lastIndex = 0;
  while (pos < str.length) {
    re.lastIndex = pos;
    const m = re.exec(str);
    if (!m) throw invalidArgument(`invalid duration ${JSON.stringify(s)} (use e.g. 90s, 10m, 24h)`);
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  return total;
}

/** Parses k=v arguments the way ctr does: "k=" clears (value ''), bare "k" sets "true". */
export function parseLabelArgs(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const i = a.indexOf('=');
    if (i === 0) throw invalidArgument(`invalid label ${JSON.stringify(a)}: empty key`);
    if (i < 0) out[a] = 'true';
    else out[a.slice(0, i)] = a.slice(i + 1);
  }
  return out;
}

/** "k=v,k2=v2" sorted, or "-" when empty (ctr's label column). */
export function labelsColumn(labels: Record<string, string>, sorted = true): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  if (sorted) pairs.sort();
  return pairs.length ? pairs.join(',') : '-';
}

/** containerd's progress.Bytes: "%02.1f %s" in binary units ("1.0 MiB", "512.0 B"). */
export function progressBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(1).padStart(2, '0')} ${units[i]}`;
}
