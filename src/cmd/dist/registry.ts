/** The command set beyond the core store verbs. */
import type { Command } from 'commander';
import { fetchCommand, fetchObjectCommand, pushCommand } from './fetch.js';
import { gcCommand } from './gc.js';
import { imagesCommand } from './images.js';
import { addImageMountCommands, applyCommand, pullCommand, rootfsCommand, unpackCommand } from './pull.js';
import { snapshotsCommand } from './snapshots.js';
import { versionCommand } from './version.js';

export function extraCommands(): Command[] {
  const images = imagesCommand();
  addImageMountCommands(images);
  return [fetchCommand(), fetchObjectCommand(), pullCommand(), pushCommand(), images, unpackCommand(), applyCommand(), rootfsCommand(), snapshotsCommand(), gcCommand(), versionCommand()];
}
