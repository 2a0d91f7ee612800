/**
 * NODE_EXTRA_CA_CERTS, deferred.
 *
 * Node reads and parses the certificates named by NODE_EXTRA_CA_CERTS while
 * it starts (~35 ms with a distribution's CA bundle), for every process,
 * whether it opens a TLS connection or not. The `dist` launcher (bin/dist)
 * moves the variable to DIST_EXTRA_CA_CERTS before it starts Node; the CLI
 * calls adoptDeferredExtraCerts() first thing, which puts NODE_EXTRA_CA_CERTS
 * back for child processes and records that this process's default trust
 * store lacks those certificates. The registry client then adds them to the
 * roots of the TLS connections it opens (remotes/docker/hosts.ts), so they
 * are trusted exactly as Node would have trusted them.
 *
 * This module must stay free of heavy imports: it runs on every start.
 */
import { readFileSync } from 'node:fs';

let deferred = false;

/** Takes over DIST_EXTRA_CA_CERTS (set by the launcher), if any. Idempotent. */
export function adoptDeferredExtraCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env.DIST_EXTRA_CA_CERTS;
  if (file === undefined) return;
  delete env.DIST_EXTRA_CA_CERTS;
  if (file === '' || env.NODE_EXTRA_CA_CERTS) return; // Node has loaded its own
  env.NODE_EXTRA_CA_CERTS = file;
  deferred = true;
}

/** True when Node's default trust store lacks NODE_EXTRA_CA_CERTS (deferred by the launcher). */
export function extraCertsDeferred(): boolean {
  return deferred;
}

let extra: string[] | undefined;

/**
 * The PEM text of NODE_EXTRA_CA_CERTS ([] when unset), read once. Like Node,
 * a file that cannot be read is a warning, not an error.
 */
export function extraCerts(): string[] {
  if (extra) return extra;
  const file = process.env.NODE_EXTRA_CA_CERTS;
  extra = [];
  if (file) {
    try {
      extra.push(readFileSync(file, 'utf8'));
    } catch (err) {
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
    }
  }
  return extra;
}
