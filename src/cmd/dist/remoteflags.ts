/** Registry flags shared by fetch, fetch-object, pull and push (ctr's names). */
import type { Command } from 'commander';
import type { RemoteOptions } from '../../client/remote.js';
import type { DockerResolver } from '../../remotes/docker/index.js';
import { createReporter, modeFor, type Reporter } from '../../progress/index.js';

export function addRemoteFlags(c: Command): Command {
  return c
    .option('--plain-http', 'allow connections using plain HTTP')
    .option('-u, --user <user:password>', 'user[:password] registry credentials (password also from env DIST_PASSWORD)')
    .option('--hosts-dir <dir>', "containerd's hosts.toml directory (default /etc/containerd/certs.d, then /etc/docker/certs.d)")
    .option('-k, --skip-verify', 'skip TLS certificate verification')
    .option('--header <header...>', 'extra HTTP headers ("Name: value")');
}

/** The registry client is loaded only by the commands that talk to a registry (start-up of the others). */
export async function resolverFrom(o: RemoteOptions & { header?: string[] }): Promise<DockerResolver> {
  const { makeResolver } = await import('../../client/remote.js');
  return makeResolver({ plainHttp: o.plainHttp, user: o.user, hostsDir: o.hostsDir, skipVerify: o.skipVerify, headers: o.header });
}

/** commander collector for repeatable flags (`--platform a --platform b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * Runs a registry operation with a resolver from the flags and a progress
 * reporter for the output mode; the reporter's last frame is drawn and the
 * resolver's connections closed whatever happens.
 */
export async function withRegistry<T>(o: RemoteOptions & { header?: string[] }, json: boolean | undefined, fn: (resolver: DockerResolver, rep: Reporter) => Promise<T>): Promise<T> {
  const resolver = await resolverFrom(o);
  const rep = createReporter(modeFor({ json }));
  try {
    return await fn(resolver, rep);
  } finally {
    rep.finish();
    await resolver.close();
  }
}
