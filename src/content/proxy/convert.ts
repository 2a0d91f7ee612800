/** content/proxy: Info and Status between the API messages and content/types. */
import { timestampFromProto, timestampToProto } from '../../api/grpc/timestamp.js';
import { int64 } from '../../api/grpc/loader.js';
import type { content as api, In } from '../../api/grpc/messages.js';
import type { Info, Status } from '../types.js';

export function infoFromProto(i: api.Info | null | undefined): Info {
  return {
    digest: i?.digest ?? '',
    size: Number(i?.size ?? 0),
    createdAt: timestampFromProto(i?.created_at) ?? 0n,
    updatedAt: timestampFromProto(i?.updated_at) ?? 0n,
    labels: { ...(i?.labels ?? {}) },
  };
}

export function infoToProto(i: Pick<Info, 'digest'> & Partial<Info>): In<api.Info> {
  return {
    digest: i.digest,
    size: int64(i.size ?? 0),
    created_at: i.createdAt !== undefined ? timestampToProto(i.createdAt) : null,
    updated_at: i.updatedAt !== undefined ? timestampToProto(i.updatedAt) : null,
    labels: i.labels ?? {},
  };
}

export function statusFromProto(s: api.Status | null | undefined): Status {
  return {
    ref: s?.ref ?? '',
    offset: Number(s?.offset ?? 0),
    total: Number(s?.total ?? 0),
    expected: s?.expected ?? '',
    startedAt: timestampFromProto(s?.started_at) ?? 0n,
    updatedAt: timestampFromProto(s?.updated_at) ?? 0n,
  };
}
