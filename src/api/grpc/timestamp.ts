/**
 * timestamp: our bigint-nanosecond Timestamp (src/internal/time.ts) ↔
 * google.protobuf.Timestamp as the loader represents it
 * ({seconds: decimal string, nanos: 0..999999999}).
 *
 * Go's zero time.Time (year 1) is what containerd sends for an unset
 * non-nullable time; it decodes to GO_ZERO_TIME, not to undefined.
 */
import type { Timestamp } from '../../internal/time.js';

/** google.protobuf.Timestamp as decoded by the loader. */
export interface ProtoTimestamp {
  seconds: string;
  nanos: number;
}

/** What the loader accepts when sending a Timestamp. */
export interface ProtoTimestampIn {
  seconds?: string | number | { low: number; high: number } | null;
  nanos?: number | null;
}

const NS = 1_000_000_000n;

/** 0001-01-01T00:00:00Z, Go's zero time.Time, in ns since the epoch. */
export const GO_ZERO_TIME: Timestamp = -62135596800n * NS;

/** ns since the epoch → {seconds, nanos} with nanos in [0, 1e9) (floor division). */
export function timestampToProto(t: Timestamp): ProtoTimestamp {
  let seconds = t / NS;
  let nanos = t - seconds * NS;
  if (nanos < 0n) {
    nanos += NS;
    seconds -= 1n;
  }
  return { seconds: seconds.toString(), nanos: Number(nanos) };
}

/** {seconds, nanos} → ns since the epoch; null/undefined → undefined. */
export function timestampFromProto(ts: ProtoTimestampIn | null | undefined): Timestamp | undefined {
  if (ts == null) return undefined;
  const s = ts.seconds;
  let seconds: bigint;
  if (s == null || s === '') seconds = 0n;
  else if (typeof s === 'object') seconds = (BigInt(s.high) << 32n) + BigInt(s.low >>> 0);
  else seconds = BigInt(s);
  return seconds * NS + BigInt(ts.nanos ?? 0);
}
