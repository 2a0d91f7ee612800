/** The command set beyond the core store verbs. */
import type { Command } from 'commander';
import { fetchCommand, fetchObjectCommand, pushCommand } from './fetch.js';
import { gcCommand } from './gc.js';
import { imagesCommand } from './images.js';

export function extraCommands(): Command[] {
  return [fetchCommand(), fetchObjectCommand(), pushCommand(), imagesCommand(), gcCommand()];
}
