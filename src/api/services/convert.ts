/**
 * convert: library values ↔ API messages (as the loader decodes them), shared
 * by the service implementations: descriptors, mounts, field masks, int64s,
 * timestamps. Each direction is total: unset message fields (null) become
 * empty values, never exceptions.
 */
import type { Descriptor } from '../../content/types.js';
import { invalidArgument } from '../../errdefs/index.js';
import type { Timestamp } from '../../internal/time.js';
import type { Mount } from '../../mount/types.js';
import { int64 } from '../grpc/loader.js';
import type { google, types } from '../grpc/messages.js';
import { timestampFromProto, timestampToProto, type ProtoTimestamp } from '../grpc/timestamp.js';

/** Largest size/offset we accept from the wire (Number.MAX_SAFE_INTEGER). */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A decoded int64 (decimal string) as a JS number; InvalidArgument when out of the safe range. */
export function toNumber(v: string | number | null | undefined, field = 'value'): number {
  if (v === null || v === undefined || v === '') return 0;
  if (typeof v === 'number') return v;
  const b = BigInt(v);
  if (b > MAX_SAFE || b < -MAX_SAFE) throw invalidArgument(`${field} ${v} out of range`);
  return Number(b);
}

export { int64 };

/** bigint ns → Timestamp message. */
export function ts(t: Timestamp): ProtoTimestamp {
  return timestampToProto(t);
}

/** Timestamp message → bigint ns (0n when unset). */
export function fromTs(t: ProtoTimestamp | null | undefined): Timestamp {
  return timestampFromProto(t) ?? 0n;
}

/** The paths of a FieldMask (none when unset). */
export function maskPaths(m: google.FieldMask | null | undefined): string[] {
  return m?.paths ? [...m.paths] : [];
}

/** Library descriptor → containerd.types.Descriptor. */
export function descriptorToProto(d: Descriptor): types.Descriptor {
  return { media_type: d.mediaType, digest: d.digest, size: int64(d.size), annotations: { ...(d.annotations ?? {}) } };
}

/** containerd.types.Descriptor → library descriptor (annotations only when present). */
export function descriptorFromProto(d: types.Descriptor | null | undefined): Descriptor {
  const out: Descriptor = { mediaType: d?.media_type ?? '', digest: d?.digest ?? '', size: toNumber(d?.size, 'descriptor size') };
  if (d?.annotations && Object.keys(d.annotations).length) out.annotations = { ...d.annotations };
  return out;
}

/** Library mount → containerd.types.Mount. */
export function mountToProto(m: Mount): types.Mount {
  return { type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] };
}

export function mountFromProto(m: types.Mount): Mount {
  const out: Mount = { type: m.type, source: m.source, options: [...(m.options ?? [])] };
  if (m.target) out.target = m.target;
  return out;
}

/** A labels map as sent: a copy, never undefined. */
export function labelsOut(l: Record<string, string> | undefined): Record<string, string> {
  return { ...(l ?? {}) };
}
