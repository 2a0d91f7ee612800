/**
 * Field-path updates of labels, the rule every metadata store's Update
 * shares (content, images, namespaces, leases, snapshots, containers),
 * as containerd's metadata package applies it:
 *
 * - no paths: the labels are replaced by the updated ones;
 * - "labels": likewise;
 * - "labels.<key>": only <key> is taken from the update — set when present
 *   there, deleted when absent or "" (the key is everything after the first
 *   ".", so "labels.a.b" is key "a.b");
 * - any other path is left for the caller, which applies the fields it
 *   knows ("target", "annotations.x", …) and rejects the rest with
 *   InvalidArgument ("cannot update \"x\" field on …").
 *
 * Stored labels never hold empty values: containerd drops them on write, so
 * `labels.k` = "" deletes k, and a full replace drops empty entries too.
 */

import { invalidArgument } from '../errdefs/index.js';

/** Largest key + value of one label, in bytes (containerd's labels.Validate). */
export const MAX_LABEL_SIZE = 4096;

/**
 * Applies an update of labels by field paths. paths empty → replace all labels with `updated`.
 * "labels" → replace all; "labels.k" → set k from updated (delete k when absent or empty string in updated).
 * Other paths are returned in `rest` for the caller (e.g. "target", "annotations.x"); unknown ones the caller rejects with InvalidArgument.
 *
 * With another prefix (e.g. "annotations") the same rule applies to that map;
 * a caller handling two maps calls this twice with the original paths, and a
 * path is unknown when neither call consumed it. `current` is not modified.
 */
export function applyLabelPaths(
  current: Record<string, string>,
  updated: Record<string, string> | undefined,
  paths: string[] | undefined,
  prefix = 'labels',
): { labels: Record<string, string>; rest: string[] } {
  const rest: string[] = [];
  let labels: Record<string, string>;
  if (!paths || paths.length === 0) {
    labels = { ...(updated ?? {}) };
  } else {
    labels = { ...current };
    const dotted = `${prefix}.`;
    for (const path of paths) {
      if (path.startsWith(dotted)) {
        const key = path.slice(dotted.length);
        const v = updated && Object.hasOwn(updated, key) ? updated[key] : '';
        if (v === '') delete labels[key];
        else labels[key] = v;
      } else if (path === prefix) {
        labels = { ...(updated ?? {}) };
      } else {
        rest.push(path);
      }
    }
  }
  for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];
  return { labels, rest };
}

/**
 * containerd's label validation: the key and value of each label together
 * must not exceed 4096 bytes (UTF-8). Throws InvalidArgument naming the
 * first 10 characters of the key.
 */
export function validateLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (Buffer.byteLength(k, 'utf8') + Buffer.byteLength(v, 'utf8') > MAX_LABEL_SIZE) {
      throw invalidArgument(
        `label key and value greater than maximum size (${MAX_LABEL_SIZE} bytes), key: ${k.length > 10 ? k.slice(0, 10) : k}`,
      );
    }
  }
}
