#!/usr/bin/env node
/**
 * distd: the daemon serving containerd's gRPC API v1 over dist's stores.
 *
 *   distd [--config FILE] [--address SOCK] [--root DIR] [--state DIR] [--log-level LEVEL]
 *
 * Defaults: socket /run/dist/distd.sock (0660), root /var/lib/dist, state
 * /run/dist, config /etc/dist/distd.toml when it exists. SIGTERM/SIGINT stop
 * gracefully (drain, then close the database); a second signal forces exit.
 * Exit status: 0 after a clean stop, 1 when the daemon cannot start (one line
 * on stderr says why).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { DEFAULT_CONFIG, defaultConfig, loadConfigFile } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger, parseLevel } from './log.js';

interface Flags {
  config?: string;
  address?: string;
  root?: string;
  state?: string;
  logLevel?: string;
}

export function program(): Command {
  return new Command('distd')
    .description("dist's daemon: containerd's gRPC API v1 (content, images, namespaces, leases, snapshots, diff, containers, events) on a unix socket")
    .option('-c, --config <file>', `TOML config file (default ${DEFAULT_CONFIG} when present)`)
    .option('-a, --address <sock>', 'unix socket to serve on (default /run/dist/distd.sock)')
    .option('--root <dir>', 'persistent data directory (default /var/lib/dist)')
    .option('--state <dir>', 'runtime state directory (default /run/dist)')
    .option('-l, --log-level <level>', 'trace, debug, info, warn or error (default info)')
    .helpOption('-h, --help', 'show this help')
    .showHelpAfterError()
    .exitOverride();
}

async function main(): Promise<void> {
  const p = program();
  let flags: Flags;
  try {
    p.parse(process.argv);
    flags = p.opts<Flags>();
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  const cfg = defaultConfig();
  let log = createLogger('info');
  try {
    const file = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    const addressBefore = cfg.address;
    if (file) loadConfigFile(cfg, file);
    const addressFromConfig = cfg.address !== addressBefore;
    if (flags.root) cfg.root = flags.root;
    if (flags.state) cfg.state = flags.state;
    if (flags.address) cfg.address = flags.address;
    else if (flags.state && !addressFromConfig) cfg.address = join(cfg.state, 'distd.sock');
    if (flags.logLevel) cfg.logLevel = parseLevel(flags.logLevel);
    cfg.root = resolve(cfg.root);
    cfg.state = resolve(cfg.state);
    log = createLogger(cfg.logLevel);
  } catch (err) {
    process.stderr.write(`distd: ${(err as Error).message}\n`);
    process.exit(1);
  }

  // Signals are handled from the start: one that arrives while the daemon
  // is still starting stops it as soon as it is up.
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let signals = 0;
  const stop = () => {
    daemon!.stop().then(
      () => process.exit(0),
      (err) => {
        log.error('stop failed', { error: err });
        process.exit(1);
      },
    );
  };
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn('second signal: exiting now', { signal: sig });
      process.exit(130);
    }
    log.info('signal received', { signal: sig });
    if (daemon) stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    daemon = await startDaemon(cfg, log);
  } catch (err) {
    process.stderr.write(`distd: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (signals > 0) stop();
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: err, stack: (err as Error)?.stack }));
}

void main();
