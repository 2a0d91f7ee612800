/**
 * progress: what long operations (fetch, pull, push, unpack) report, and
 * the three ways the CLI shows it: live bars redrawn in place on a TTY (like
 * ctr's pull output), one plain line per state change otherwise, NDJSON
 * events with --json.
 */
import { bytesSize } from '../internal/format.js';

export type State = 'resolving' | 'resolved' | 'waiting' | 'downloading' | 'uploading' | 'unpacking' | 'done' | 'exists' | 'error' | 'skipped';

export interface Event {
  /** Row key, e.g. "layer-sha256:…", "manifest-sha256:…", a reference, "unpack-sha256:…". */
  ref: string;
  state: State;
  offset?: number;
  total?: number;
  message?: string;
}

export interface Reporter {
  update(ev: Event): void;
  /** Final redraw and summary ("elapsed: … total: … (rate)"). */
  finish(summary?: string): void;
}

export type Mode = 'tty' | 'plain' | 'json' | 'quiet';

export function modeFor(opts: { json?: boolean; quiet?: boolean }, stream: NodeJS.WriteStream = process.stderr): Mode {
  if (opts.quiet) return 'quiet';
  if (opts.json) return 'json';
  return stream.isTTY ? 'tty' : 'plain';
}

export function createReporter(mode: Mode, out: NodeJS.WritableStream = process.stderr): Reporter {
  switch (mode) {
    case 'tty':
      return new TTYReporter(out as NodeJS.WriteStream);
    case 'plain':
      return new PlainReporter(out);
    case 'json':
      return new JSONReporter(process.stdout);
    default:
      return { update() {}, finish() {} };
  }
}

interface Row extends Event {
  started: number;
}

abstract class Base implements Reporter {
  protected readonly rows = new Map<string, Row>();
  protected readonly start = performance.now();

  update(ev: Event): void {
    const prev = this.rows.get(ev.ref);
    const row: Row = { ...prev, ...ev, started: prev?.started ?? performance.now() };
    this.rows.set(ev.ref, row);
    this.changed(row, prev);
  }

  protected abstract changed(row: Row, prev?: Row): void;
  abstract finish(summary?: string): void;

  protected totals(): { bytes: number; seconds: number } {
    let bytes = 0;
    for (const r of this.rows.values()) if (r.state === 'done' || r.state === 'downloading' || r.state === 'uploading') bytes += r.offset ?? 0;
    return { bytes, seconds: (performance.now() - this.start) / 1000 };
  }

  protected summaryLine(): string {
    const { bytes, seconds } = this.totals();
    return `elapsed: ${seconds.toFixed(1)} s\ttotal: ${bytesSize(bytes)}\t(${bytesSize(seconds > 0 ? bytes / seconds : 0)}/s)`;
  }
}

const BAR = 40;

class TTYReporter extends Base {
  private drawn = 0;
  private timer: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream) {
    super();
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }

  protected changed(): void {}

  private draw(final = false): void {
    // a terminal that reports no size (0: `script`, some CI ptys) is taken as 80 columns
    const width = Math.max(40, this.out.columns || 80);
    const rows = [...this.rows.values()];
    // Names get what they need up to 72 columns, the bar what is left (10-40).
    const longest = Math.max(0, ...rows.map((r) => r.ref.length + 1));
    const nameW = Math.max(12, Math.min(longest, 72, width - 12 - 10 - 24));
    const barW = Math.max(10, Math.min(BAR, width - nameW - 12 - 24));
    const lines: string[] = [];
    for (const r of rows) {
      const label = `${r.ref}:`;
      const name = label.length > nameW ? label.slice(0, nameW - 1) + '…' : label.padEnd(nameW);
      let bar = '';
      if (r.total && r.total > 0) {
        const frac = r.state === 'done' || r.state === 'exists' ? 1 : Math.min(1, (r.offset ?? 0) / r.total);
        const n = Math.round(frac * barW);
        bar = `|${'+'.repeat(n)}${'-'.repeat(barW - n)}|`;
        if (r.state === 'downloading' || r.state === 'uploading') bar += ` ${bytesSize(r.offset ?? 0)}/${bytesSize(r.total)}`;
      } else if (r.state === 'done' || r.state === 'exists' || r.state === 'resolved') bar = `|${'+'.repeat(barW)}|`;
      if (r.message) bar += ` ${r.message}`;
      lines.push(`${name} ${r.state.padEnd(12)}${bar}`.slice(0, width - 1));
    }
    lines.push(this.summaryLine().replace(/\t/g, '  '));
    let s = '';
    if (this.drawn) s += `\x1b[${this.drawn}A`;
    for (const l of lines) s += `\x1b[2K${l}\n`;
    this.out.write(s);
    this.drawn = lines.length;
    if (final) clearInterval(this.timer);
  }

  finish(summary?: string): void {
    this.draw(true);
    if (summary) this.out.write(summary + '\n');
  }
}

class PlainReporter extends Base {
  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }

  protected changed(row: Row, prev?: Row): void {
    if (prev && prev.state === row.state) return; // one line per state change
    const size = row.total ? ` ${bytesSize(row.state === 'done' || row.state === 'exists' ? row.total : row.offset ?? 0)}` : '';
    this.out.write(`${row.ref}: ${row.state}${size}${row.message ? ` ${row.message}` : ''}\n`);
  }

  finish(summary?: string): void {
    this.out.write(this.summaryLine().replace(/\t/g, ' ') + '\n');
    if (summary) this.out.write(summary + '\n');
  }
}

class JSONReporter extends Base {
  private last = new Map<string, number>();

  constructor(private readonly out: NodeJS.WritableStream) {
    super();
  }

  protected changed(row: Row, prev?: Row): void {
    // Throttle byte updates to ~10/s per row; state changes always go out.
    const t = performance.now();
    if (prev && prev.state === row.state && t - (this.last.get(row.ref) ?? 0) < 100) return;
    this.last.set(row.ref, t);
    const { started: _s, ...ev } = row;
    void _s;
    this.out.write(JSON.stringify({ event: 'progress', ...ev }) + '\n');
  }

  finish(summary?: string): void {
    const { bytes, seconds } = this.totals();
    this.out.write(JSON.stringify({ event: 'finished', elapsedSeconds: Number(seconds.toFixed(3)), bytes, ...(summary ? { message: summary } : {}) }) + '\n');
  }
}
