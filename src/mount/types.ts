/**
 * A mount to perform, as snapshotters return it and clients execute it
 * (containerd's mount.Mount). `options` mixes mount flags ("ro", "rbind")
 * and filesystem data ("lowerdir=…"), exactly like mount(8)'s -o list.
 */
export interface Mount {
  /** Filesystem type: "bind", "overlay", "tmpfs", … */
  type: string;
  /** Source path or device; "overlay" for overlay mounts. */
  source: string;
  /** Sub-path under the mount root (unused by local snapshotters). */
  target?: string;
  options: string[];
}
