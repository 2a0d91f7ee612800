/** Commands added as the library grows (images, fetch, pull, push, snapshots, gc…). */
import type { Command } from 'commander';

export function extraCommands(): Command[] {
  return [];
}
