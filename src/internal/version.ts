/**
 * version: the version of this package (package.json) and the git revision
 * of the checkout it runs from, if any: what the Version service answers and
 * `dist version` prints.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './pkgroot.js';

export interface VersionInfo {
  version: string;
  revision: string;
}

let cached: VersionInfo | undefined;

/**
 * {version, revision} of this build: version from package.json; revision from
 * DIST_REVISION, else `git rev-parse HEAD` in the package root, else "".
 */
export function buildVersion(): VersionInfo {
  if (cached) return cached;
  const root = packageRoot();
  let version = '';
  try {
    version = String(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version ?? '');
  } catch {
    // no package.json next to the build: leave empty
  }
  let revision = process.env.DIST_REVISION ?? '';
  if (!revision && existsSync(join(root, '.git'))) {
    try {
      revision = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim();
    } catch {
      revision = '';
    }
  }
  return (cached = { version, revision });
}
