/**
 * Timestamps: nanoseconds since the Unix epoch as bigint, so that containerd's
 * ns-precision checks (preStart <= StartedAt <= postStart) hold. The clock is
 * CLOCK_REALTIME read through the native addon, as Go's time.Now() reads it;
 * without the addon, wall time at start-up plus a monotonic hrtime offset
 * (which drifts from the real-time clock while NTP slews it: up to ~1 ms
 * behind a client, below the millisecond floor). Never going backwards.
 */
import { native } from './sys.js';

export type Timestamp = bigint;

/**
 * The wall-clock anchor of the hrtime-based clock: the instant Date.now()
 * ticks over to a new millisecond, pinned between two hrtime samples taken a
 * few hundred ns apart. Date.now() alone is ms-precise (stamps up to 1 ms
 * behind a client's ns clock), and performance.timeOrigin is measured apart
 * from the hrtime origin (stamps ~0.6 ms ahead here): either way a client's
 * preStart <= t <= postStart check fails. Spins once, ~1 ms (at most ~20 ms).
 */
function anchor(): { wall: bigint; hr: bigint } {
  let best: { win: bigint; wall: bigint; hr: bigint } | undefined;
  const deadline = process.hrtime.bigint() + 20_000_000n;
  let prevHr = process.hrtime.bigint();
  let prevMs = Date.now();
  for (;;) {
    const ms = Date.now();
    const hr = process.hrtime.bigint();
    if (ms !== prevMs) {
      // The tick happened between the previous sample and this one.
      const win = hr - prevHr;
      if (!best || win < best.win) best = { win, wall: BigInt(ms) * 1_000_000n, hr: prevHr + win / 2n };
      if (win < 2_000n) break;
      prevMs = ms;
    }
    prevHr = hr;
    if (best && hr > deadline) break;
  }
  return best!;
}

let base: { wall: bigint; hr: bigint } | undefined; // the fallback's anchor, made on first use
let last = 0n;

/** Current time in ns; strictly increasing within this process. */
export function now(): Timestamp {
  let t: bigint;
  if (native?.realtimeNs) {
    t = native.realtimeNs();
  } else {
    base ??= anchor();
    t = base.wall + (process.hrtime.bigint() - base.hr);
    // Never behind the millisecond wall clock (clients compare with their own).
    const wall = BigInt(Date.now()) * 1_000_000n;
    if (t < wall) t = wall;
  }
  if (t <= last) t = last + 1n;
  last = t;
  return t;
}

export function fromDate(d: Date): Timestamp {
  return BigInt(d.getTime()) * 1_000_000n;
}

export function toDate(t: Timestamp): Date {
  return new Date(Number(t / 1_000_000n));
}

/**
 * "YYYY-MM-DDTHH:MM:SS" in UTC for ms since the epoch, from the UTC getters:
 * Date#toISOString's first call in a process loads the time zone (~5 ms of
 * every command that stamps a lease). Years outside 0–9999 take toISOString's
 * extended form.
 */
function utcSeconds(ms: number): string {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) return d.toISOString().slice(0, -5);
  const p = (n: number) => (n < 10 ? '0' : '') + n;
  return `${String(y).padStart(4, '0')}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** RFC 3339 in UTC to the second: 2026-11-22T22:28:59Z */
export function toRFC3339(ms: number): string {
  return `${utcSeconds(ms)}Z`;
}

/** RFC 3339 with nanoseconds, UTC: 2026-11-22T22:28:59.123456789Z */
export function toRFC3339Nano(t: Timestamp): string {
  const ns = ((t % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const secs = (t - ns) / 1_000_000_000n; // floor, also before 1970
  return `${utcSeconds(Number(secs) * 1000)}.${ns.toString().padStart(9, '0')}Z`;
}

/** Parses RFC 3339 (fractions up to ns). Returns undefined when malformed. */
export function parseRFC3339(s: string): Timestamp | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(s.trim());
  if (!m) return undefined;
  const ms = Date.parse(m[1] + (m[3].toUpperCase() === 'Z' ? 'Z' : m[3]));
  if (Number.isNaN(ms)) return undefined;
  const frac = BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  return BigInt(ms) * 1_000_000n + frac;
}

export function toSecondsNanos(t: Timestamp): { seconds: bigint; nanos: number } {
  const seconds = t / 1_000_000_000n;
  return { seconds, nanos: Number(t - seconds * 1_000_000_000n) };
}

export function fromSecondsNanos(seconds: bigint | number | string, nanos: number): Timestamp {
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}
