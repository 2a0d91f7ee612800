#!/usr/bin/env node
/**
 * dist: the CLI, a thin shell over the library. Embedded by default (opens a
 * local root directly); with --address (or CONTAINERD_ADDRESS) a client of
 * any containerd-compatible daemon.
 */
import { Command, CommanderError } from 'commander';
import { adoptDeferredExtraCerts } from '../../internal/extracerts.js';
import { contentCommand } from './content.js';
import { EXIT_SIGPIPE, fail } from './context.js';
import { leasesCommand } from './leases.js';
import { namespacesCommand } from './namespaces.js';
import { extraCommands } from './registry.js';
import { runMain } from '../../internal/snapshot.js';

export function program(): Command {
  const p = new Command('dist')
    .description("containerd's image distribution and storage core")
    .option('--root <dir>', 'root directory of the embedded store (env DIST_ROOT)')
    .option('-a, --address <socket>', 'use a containerd-compatible daemon at this socket (env CONTAINERD_ADDRESS)')
    .option('-n, --namespace <ns>', 'namespace (env CONTAINERD_NAMESPACE)', '')
    .option('--json', 'machine-readable output')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError()
    .exitOverride();
  p.addCommand(contentCommand());
  p.addCommand(namespacesCommand());
  p.addCommand(leasesCommand());
  for (const c of extraCommands()) p.addCommand(c);
  // Sub-commands throw instead of exiting, so errors get one formatted line.
  const walk = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(p);
  return p;
}

async function main(): Promise<void> {
  adoptDeferredExtraCerts(); // NODE_EXTRA_CA_CERTS, deferred by bin/dist
  // The reader of our output went away (`dist content get D | head`): stop
  // quietly with the status a process killed by SIGPIPE has, as ctr does.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_SIGPIPE);
    fail(err);
  });
  const p = program();
  try {
    await p.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 3);
    fail(err, process.argv.includes('--debug'));
  }
}

runMain(main);
