/**
 * The CLI's shared plumbing: global flags → Services (embedded root or a
 * daemon address), the namespace, output helpers and the one-line error exit.
 */
import type { Command } from 'commander';
import { Code, DistError, codeOf, hintOf, systemHint } from '../../errdefs/index.js';
import { DEFAULT_NAMESPACE, type Ctx } from '../../internal/context.js';
import { toRFC3339Nano } from '../../internal/time.js';
import { defaultRoot, openEmbedded, type Embedded } from '../../services/embedded.js';
import type { Services } from '../../services/types.js';

export interface GlobalOpts {
  root?: string;
  address?: string;
  namespace?: string;
  json?: boolean;
  debug?: boolean;
}

export function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals() as GlobalOpts;
}

/** Opens the services the global flags name. Close them when done. */
export async function services(g: GlobalOpts): Promise<Services> {
  const address = g.address ?? process.env.CONTAINERD_ADDRESS;
  if (address) {
    const { connect } = await import('../../services/remote.js');
    return connect(address);
  }
  return openEmbedded(g.root ?? defaultRoot());
}

/** The embedded services, or NotImplemented naming the command when --address is set. */
export async function embeddedOnly(g: GlobalOpts, what: string): Promise<Embedded> {
  if (g.address ?? process.env.CONTAINERD_ADDRESS) throw new DistError(Code.NotImplemented, `${what} works on a local root only (drop --address)`);
  return openEmbedded(g.root ?? defaultRoot());
}

export function namespaceOf(g: GlobalOpts): string {
  return g.namespace || process.env.CONTAINERD_NAMESPACE || DEFAULT_NAMESPACE;
}

/** Ctx for a command: namespace, and a signal aborted by SIGINT/SIGTERM. */
export function ctxOf(g: GlobalOpts): Ctx {
  const ac = new AbortController();
  const onSig = (sig: string) => ac.abort(new DistError(Code.Canceled, `interrupted by ${sig}`));
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  return { namespace: namespaceOf(g), signal: ac.signal };
}

/** Runs an action with opened services, closing them afterwards. */
export async function withServices<T>(cmd: Command, fn: (svc: Services, ctx: Ctx, g: GlobalOpts) => Promise<T>): Promise<T> {
  const g = globals(cmd);
  const svc = await services(g);
  try {
    return await fn(svc, ctxOf(g), g);
  } finally {
    await svc.close();
  }
}

/** JSON with bigint timestamps as RFC 3339 (ns) strings, keys named *At; other bigints as numbers. */
export function printJSON(v: unknown): void {
  process.stdout.write(
    JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? (/At$/.test(k) ? toRFC3339Nano(x) : Number(x)) : x), 2) + '\n',
  );
}

/** One NDJSON line (the --json form of streamed events: progress, then the result). */
export function printEvent(v: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? (/At$/.test(k) ? toRFC3339Nano(x) : Number(x)) : x)) + '\n');
}

/** The status of a process killed by SIGPIPE (128 + 13). */
export const EXIT_SIGPIPE = 141;

/** Prints one line `dist: <message>` (plus a hint) and exits non-zero. */
export function fail(err: unknown, debug = false): never {
  const code = codeOf(err);
  let msg = err instanceof Error ? err.message : String(err);
  if (code === Code.Unknown && err instanceof Error && err.cause instanceof Error && !msg.includes(err.cause.message)) msg += `: ${err.cause.message}`;
  const hint = hintOf(err) ?? systemHint(err);
  process.stderr.write(`dist: ${msg.split('\n')[0]}${hint ? ` (${hint})` : ''}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  process.exit(exitCode(code));
}

/** Exit codes: 1 generic; distinct codes let scripts tell classes apart. */
export function exitCode(code: Code): number {
  switch (code) {
    case Code.NotFound:
      return 2;
    case Code.InvalidArgument:
      return 3;
    case Code.AlreadyExists:
      return 4;
    case Code.FailedPrecondition:
      return 5;
    case Code.Unavailable:
      return 6;
    case Code.Canceled:
      return 130;
    default:
      return 1;
  }
}
