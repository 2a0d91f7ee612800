/** client/remote: a registry resolver configured the way the CLI flags say. */
import { invalidArgument } from '../errdefs/index.js';
import { createResolver, dockerCredentials, type DockerResolver } from '../remotes/docker/index.js';

export interface RemoteOptions {
  /** Use http instead of https. */
  plainHttp?: boolean;
  /** "user:password" (or "user" with the password in env DIST_PASSWORD) for every host. */
  user?: string;
  /** hosts.toml directory (containerd's certs.d layout). */
  hostsDir?: string;
  /** Skip TLS verification. */
  skipVerify?: boolean;
  /** Extra headers ("Name: value"). */
  headers?: string[];
}

export function makeResolver(o: RemoteOptions = {}): DockerResolver {
  let credentials = dockerCredentials();
  if (o.user) {
    const i = o.user.indexOf(':');
    const username = i < 0 ? o.user : o.user.slice(0, i);
    const password = i < 0 ? process.env.DIST_PASSWORD ?? '' : o.user.slice(i + 1);
    if (!username) throw invalidArgument('--user needs a user name ("user:password")');
    credentials = async () => ({ username, password });
  }
  const headers: Record<string, string> = {};
  for (const h of o.headers ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw invalidArgument(`invalid header ${JSON.stringify(h)} (use "Name: value")`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  return createResolver({
    plainHTTP: o.plainHttp,
    hostsDir: o.hostsDir,
    tls: o.skipVerify ? { skipVerify: true } : undefined,
    credentials,
    headers,
  });
}
