/**
 * `dist version`: this client's version and how it runs (Node, the native
 * addon, the startup snapshot) and, with --address, the daemon's version,
 * as `ctr version` prints client and server.
 */
import { Command } from 'commander';
import { startedFromSnapshot } from '../../internal/snapshot.js';
import { native, nativeAddonPath, nativeLoadError } from '../../internal/sys.js';
import { buildVersion, type VersionInfo } from '../../internal/version.js';
import { globals, printJSON } from './context.js';

export interface ClientVersion extends VersionInfo {
  node: string;
  /** The addon file, or undefined when the system tools stand in for it. */
  nativeAddon?: string;
  nativeAddonError?: string;
  startupSnapshot: boolean;
}

export function versionCommand(): Command {
  return new Command('version')
    .description("print the client's version and runtime, and the daemon's with --address")
    .action(async (_o: object, cmd: Command) => {
      const g = globals(cmd);
      const client: ClientVersion = {
        ...buildVersion(),
        node: process.version,
        nativeAddon: native ? nativeAddonPath : undefined,
        nativeAddonError: native ? undefined : nativeLoadError?.message,
        startupSnapshot: startedFromSnapshot(),
      };
      const address = g.address ?? process.env.CONTAINERD_ADDRESS;
      const server = address ? await serverVersion(address) : undefined;
      if (g.json) return printJSON(server ? { client, server } : { client });
      const lines = [
        'Client:',
        `  Version:          ${client.version}`,
        `  Revision:         ${client.revision}`,
        `  Node version:     ${client.node}`,
        `  Native addon:     ${client.nativeAddon ?? `not loaded (${client.nativeAddonError ?? 'unknown'}): system tools stand in`}`,
        `  Startup snapshot: ${client.startupSnapshot ? 'yes' : 'no'}`,
      ];
      if (server) lines.push('', 'Server:', `  Version:          ${server.version}`, `  Revision:         ${server.revision}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/** The daemon's containerd.services.version.v1.Version answer. */
async function serverVersion(address: string): Promise<VersionInfo> {
  const { connect } = await import('../../services/remote.js');
  const { unaryCall } = await import('../../api/grpc/client.js');
  const remote = await connect(address);
  try {
    return await unaryCall<object, VersionInfo>(remote.connection.client('containerd.services.version.v1.Version'), 'Version', {});
  } finally {
    await remote.close();
  }
}
