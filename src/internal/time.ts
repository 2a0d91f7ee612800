/**
 * Timestamps: nanoseconds since the Unix epoch as bigint, so that containerd's
 * ns-precision checks (preStart <= StartedAt <= postStart) hold. The clock is
 * wall time at start-up plus a monotonic hrtime offset, never going backwards.
 */
export type Timestamp = bigint;

// Wall time at the hrtime base with sub-millisecond precision (timeOrigin + now() in µs),
// so stamps are not up to 1 ms behind clients' ns clocks.
const baseHr = process.hrtime.bigint();
const baseWall = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
let last = 0n;

/** Current time in ns; strictly increasing within this process. */
export function now(): Timestamp {
  let t = baseWall + (process.hrtime.bigint() - baseHr);
  // Never behind the millisecond wall clock (clients compare with their own).
  const wall = BigInt(Date.now()) * 1_000_000n;
  if (t < wall) t = wall;
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

/** RFC 3339 with nanoseconds, UTC: 2026-11-22T22:28:59.123456789Z */
export function toRFC3339Nano(t: Timestamp): string {
  const ms = t / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // ...ss.mmmZ
  const ns = (((t % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return iso.slice(0, 19) + '.' + ns + 'Z';
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
