/**
 * Label updates by field path and walk filters, with containerd's snapshot
 * semantics (snapshots/storage/bolt.go).
 */
import { invalidArgument } from '../../errdefs/index.js';
import { parseAll, type Adaptor, type Filter } from '../../filters/index.js';
import { applyLabelPaths } from '../../internal/fieldpaths.js';
import type { Info, UpdateInfo } from '../types.js';

/**
 * The labels after an update: no paths or `labels` replace all labels,
 * `labels.<k>` takes k from the request (absent or "" removes it); any other
 * path is InvalidArgument (name, parent, kind and times are immutable).
 */
export function applyUpdate(current: Info, req: UpdateInfo, fieldpaths?: string[]): Record<string, string> {
  const { labels, rest } = applyLabelPaths(current.labels, req.labels, fieldpaths);
  if (rest.length) throw invalidArgument(`cannot update "${rest[0]}" field on snapshot "${req.name}"`);
  return labels;
}

/**
 * Filter fields of a snapshot: `kind` (active|view|committed), `name`,
 * `parent` (present as "" when there is none, as in containerd), `labels.<k>`.
 */
export function adaptSnapshot(info: Info): Adaptor {
  return (fieldpath) => {
    switch (fieldpath[0]) {
      case 'kind': return info.kind;
      case 'name': return info.name;
      case 'parent': return info.parent ?? '';
      case 'labels': {
        const key = fieldpath.slice(1).join('.');
        return Object.hasOwn(info.labels, key) ? info.labels[key] : undefined;
      }
      default: return undefined;
    }
  };
}

/** A predicate for walk: matches when any filter does (none: everything). InvalidArgument on bad syntax. */
export function snapshotFilter(filters: string[] = []): (info: Info) => boolean {
  const f: Filter = parseAll(...filters);
  return (info) => f.match(adaptSnapshot(info));
}
